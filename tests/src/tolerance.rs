//! Shares and relative tolerances for comparing measurements.

/// a / (a + b), NaN-free (0 when both are 0).
pub fn share(a: u64, b: u64) -> f64 {
    if a + b == 0 { 0.0 } else { a as f64 / (a + b) as f64 }
}

/// |value - expected| <= tolerance × expected.
pub fn within(value: f64, expected: f64, rel_tolerance: f64) -> bool {
    (value - expected).abs() <= rel_tolerance * expected
}
