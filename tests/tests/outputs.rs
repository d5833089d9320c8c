//! Output formats: folded, SVG, --format, stdout.

use flameprof_tests::*;
use quick_xml::events::Event;
use std::time::Duration;

const T: Duration = Duration::from_secs(40);

/// Every line is `STACK COUNT` with a positive count, except (when
/// `allow_header`) a block of `# ` header lines at the top.
fn assert_folded_lines(what: &str, text: &str, allow_header: bool) -> Folded {
    assert!(!text.is_empty(), "{what}: empty folded output");
    assert!(text.ends_with('\n'), "{what}: last line not terminated");
    let mut in_header = allow_header;
    let mut stacks = 0;
    for (i, line) in text.lines().enumerate() {
        if in_header && line.starts_with("# ") {
            continue;
        }
        in_header = false;
        let stack = parse_folded_line(line).unwrap_or_else(|e| panic!("{what}: line {}: {e}", i + 1));
        assert!(stack.count > 0, "{what}: line {} has count 0: {line:?}", i + 1);
        stacks += 1;
    }
    assert!(stacks > 0, "{what}: no stack lines");
    Folded::parse(text).unwrap()
}

/// Parses the whole document with quick-xml (end tags checked) and returns
/// the concatenated text content (outside CDATA, i.e. not the script) and
/// the root element name.
fn parse_svg(what: &str, bytes: &[u8]) -> (String, String) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: SVG is not UTF-8: {e}"));
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0i64;
    let mut root = String::new();
    let mut content = String::new();
    let mut elements = 0usize;
    loop {
        match reader.read_event() {
            Err(e) => panic!("{what}: SVG is not well-formed XML at byte {}: {e}", reader.buffer_position()),
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    root = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                }
                depth += 1;
                elements += 1;
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Empty(e)) => {
                if depth == 0 {
                    root = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                }
                elements += 1;
            }
            Ok(Event::Text(t)) => content.push_str(&String::from_utf8_lossy(t.as_ref())),
            Ok(_) => {}
        }
    }
    assert_eq!(depth, 0, "{what}: unbalanced elements at end of SVG");
    assert!(elements > 10, "{what}: SVG has only {elements} elements");
    (content, root)
}

#[test]
fn folded_output_is_well_formed() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("fmt");
    let out = dir.join("x.folded");
    flameprof(&["-F", "499", "-o", &s(&out), "--", &example("syscall_loop"), "0.5"], T).assert_success("flameprof");
    let text = std::fs::read_to_string(&out).unwrap();
    let folded = assert_folded_lines("x.folded", &text, true);
    assert!(folded.with_frame("syscall_loop::read_dev_zero") > 0, "workload missing:\n{}", folded.describe_top(5));
    let roots = folded.by_root();
    assert_eq!(roots.keys().collect::<Vec<_>>(), vec!["syscall_loop"], "root frame is not the process name");
    // A header, if there is one, must not contradict the recording.
    for line in &folded.comment_lines {
        if let Some(rest) = line.strip_prefix("# flameprof profile: samples at ") {
            assert_eq!(rest, "499 Hz", "header names the wrong frequency: {line:?}");
        }
        assert!(!line.contains("microseconds"), "on-CPU header claims microseconds: {line:?}");
    }
}

#[test]
fn svg_output_is_well_formed_with_title_and_count_name() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("svg");
    let title = "flameprof e2e title check";

    let on = dir.join("on.svg");
    flameprof(&["--title", title, "-o", &s(&on), "--", &example("spinner"), "0.5"], T).assert_success("on-CPU svg");
    let bytes = std::fs::read(&on).unwrap();
    let (content, root) = parse_svg("on.svg", &bytes);
    assert_eq!(root, "svg", "root element");
    assert!(content.contains(title), "on-CPU SVG does not contain the --title");
    assert!(content.contains("samples"), "on-CPU SVG does not name its count (samples)");
    assert!(content.contains("spinner::spin"), "on-CPU SVG does not contain the workload's frame");

    let off = dir.join("off.svg");
    flameprof(&["--off-cpu", "-o", &s(&off), "--", &example("offcpu_blocks")], T).assert_success("off-CPU svg");
    let bytes = std::fs::read(&off).unwrap();
    let (content, _) = parse_svg("off.svg", &bytes);
    assert!(content.contains("microseconds"), "off-CPU SVG does not name its count (microseconds)");
    assert!(content.contains("offcpu_blocks::sleep_200ms"), "off-CPU SVG misses sleep_200ms");
}

#[test]
fn format_flag_overrides_the_extension() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("fmtflag");
    let out = dir.join("x.svg");
    flameprof(&["--format", "folded", "-o", &s(&out), "--", &example("spinner"), "0.4"], T)
        .assert_success("--format folded");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("<svg"), "--format folded -o x.svg wrote an SVG");
    let folded = assert_folded_lines("x.svg (--format folded)", &text, true);
    assert!(folded.with_frame("spinner::spin") > 0);

    let out = dir.join("y.folded");
    flameprof(&["--format", "svg", "-o", &s(&out), "--", &example("spinner"), "0.3"], T).assert_success("--format svg");
    let bytes = std::fs::read(&out).unwrap();
    let (_, root) = parse_svg("y.folded (--format svg)", &bytes);
    assert_eq!(root, "svg");
}

#[test]
fn profile_goes_to_stdout_without_o() {
    root_or_skip!();
    kernel_can_record!();
    // Folded on stdout; the summary stays on stderr.
    let run = flameprof(&["--format", "folded", "--", &example("spinner"), "0.4"], T);
    run.assert_success("folded to stdout");
    let text = run.stdout_str();
    let folded = assert_folded_lines("stdout", &text, true);
    assert!(folded.with_frame("spinner::spin") > 0, "stdout profile misses spinner::spin");
    assert!(!text.contains("recorded"), "summary leaked to stdout");
    assert!(run.stderr.contains("recorded"), "no summary on stderr:\n{}", run.stderr);

    // Default format on a pipe: SVG.
    let run = flameprof(&["--", &example("spinner"), "0.3"], T);
    run.assert_success("svg to stdout");
    let (content, root) = parse_svg("stdout svg", &run.stdout);
    assert_eq!(root, "svg");
    assert!(content.contains("spinner::spin"));
}

/// One recording written in all four formats at once: each file holds the
/// same profile, cpu_split's 3:1 split with the same sample counts (pprof
/// read back through `flameprof report`, speedscope's JSON parsed here).
#[test]
fn every_format_holds_the_same_profile() {
    root_or_skip!();
    kernel_can_record!();
    const HOT: &str = "cpu_split::hot_three_quarters";
    const COLD: &str = "cpu_split::cold_one_quarter";
    let dir = TempDir::new("formats");
    let [folded, svg, pprof, speedscope] =
        ["p.folded", "p.svg", "p.pb.gz", "p.speedscope.json"].map(|name| s(&dir.join(name)));
    let cpu_split = example("cpu_split");
    let args = ["-F", "999", "-o", &folded, "-o", &svg, "-o", &pprof, "-o", &speedscope, "--", &cpu_split, "2", "3"];
    flameprof(&args, T).assert_success("flameprof with four outputs");

    let folded = Folded::read(std::path::Path::new(&folded));
    let (hot, cold) = (folded.with_frame(HOT), folded.with_frame(COLD));
    assert!(hot + cold >= 300, "only {} samples in hot/cold:\n{}", hot + cold, folded.describe_top(6));
    assert!((share(hot, cold) - 0.75).abs() <= 0.07, "hot share {:.3} of {}", share(hot, cold), hot + cold);

    let (content, root) = parse_svg("p.svg", &std::fs::read(&svg).unwrap());
    assert_eq!(root, "svg");
    assert!(content.contains(HOT) && content.contains(COLD), "the SVG misses hot or cold");

    let report = flameprof(&["report", &pprof, "--top", "1000", "--json"], T);
    report.assert_success("flameprof report p.pb.gz");
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).expect("report --json is JSON");
    let total_of = |function: &str| {
        json["top_total"].as_array().unwrap().iter().find(|r| r["function"] == function).map(|r| r["total"].clone())
    };
    assert_eq!(json["total"], folded.total(), "pprof total");
    assert_eq!((total_of(HOT), total_of(COLD)), (Some(hot.into()), Some(cold.into())), "pprof: {json}");

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&speedscope).unwrap()).expect("speedscope JSON");
    let frames = doc["shared"]["frames"].as_array().expect("shared.frames");
    // A function may be several frames (one per source line): any counts.
    let indices_of = |name: &str| -> Vec<serde_json::Value> {
        (0..frames.len()).filter(|&i| frames[i]["name"] == name).map(|i| i.into()).collect()
    };
    let profile = &doc["profiles"][0];
    let samples = profile["samples"].as_array().expect("samples");
    let weights: Vec<u64> = profile["weights"].as_array().expect("weights").iter().filter_map(|w| w.as_u64()).collect();
    assert_eq!(samples.len(), weights.len(), "one weight per speedscope sample");
    let weight_with = |name: &str| -> u64 {
        let indices = indices_of(name);
        let holds = |stack: &serde_json::Value| stack.as_array().unwrap().iter().any(|i| indices.contains(i));
        samples.iter().zip(&weights).filter(|(stack, _)| holds(stack)).map(|(_, w)| w).sum()
    };
    assert_eq!(weights.iter().sum::<u64>(), folded.total(), "speedscope total");
    assert_eq!((weight_with(HOT), weight_with(COLD)), (hot, cold), "speedscope hot and cold");
}
