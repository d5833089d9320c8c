//! Round trips between the writers and readers, diff, gate and report on
//! synthetic profiles whose shares are known, and malformed inputs.
use std::{path::PathBuf, process::Command};

use serde_json::Value;

use crate::{
    analysis::{diff, report, shares::Shares},
    formats::{self, Context, Format, Palette, SvgOptions, folded},
    profile::{Frame, FrameKind, Profile, Stack, Unit},
    settings::TableStyle as Style,
};

fn user(name: &str) -> Frame {
    Frame {
        name: name.into(),
        kind: FrameKind::User,
        module: Some("app".into()),
        file: Some("src/app.rs".into()),
        line: Some(7),
        inlined: false,
    }
}

fn inlined(name: &str) -> Frame {
    Frame { inlined: true, line: Some(9), ..user(name) }
}

fn kernel(name: &str) -> Frame {
    Frame {
        name: name.into(),
        kind: FrameKind::Kernel,
        module: Some("[kernel]".into()),
        file: None,
        line: None,
        inlined: false,
    }
}

fn jit(name: &str) -> Frame {
    Frame {
        name: name.into(),
        kind: FrameKind::Jit,
        module: Some("[jit]".into()),
        file: None,
        line: None,
        inlined: false,
    }
}

/// [`split`] with JIT code under `main` too (a name with spaces, as node's).
fn split_with_jit(hot: u64, cold: u64) -> Profile {
    let mut profile = split(hot, cold);
    profile.add(vec![Frame::task("cpu_split"), user("main"), jit("JS:*hot /app.js:1"), jit("jit_leaf")], 4);
    profile
}

/// `hot` and `cold` in `hot:cold` proportion, with an inlined frame and a
/// kernel frame on the way, like the cpu_split example.
fn split(hot: u64, cold: u64) -> Profile {
    let mut profile = Profile::new(Unit::Samples { frequency_hz: 999 });
    let base = vec![Frame::task("cpu_split"), user("main"), inlined("cpu_split::main")];
    profile.add([base.clone(), vec![user("cpu_split::hot_three_quarters")]].concat(), hot);
    profile.add([base.clone(), vec![user("cpu_split::cold_one_quarter")]].concat(), cold);
    profile.add([base, vec![user("write"), kernel("do_syscall_64")]].concat(), 2);
    profile
}

fn svg_options() -> SvgOptions {
    SvgOptions {
        title: "t".into(),
        width: 1200,
        min_width: 0.1,
        inverted: false,
        reverse: false,
        palette: Palette::Kernel,
    }
}

fn render(profile: &Profile, format: Format) -> Vec<u8> {
    let options = svg_options();
    let context = Context::minimal(&options, "1.0 s, 100 samples, 0 lost, 0.0% of frames unresolved");
    formats::render(profile, format, &context).expect("renders")
}

fn folded_text(profile: &Profile) -> String {
    String::from_utf8(render(profile, Format::Folded)).unwrap()
}

fn sorted_stacks(profile: &Profile) -> Vec<(Stack, u64)> {
    profile.sorted_stacks().into_iter().map(|(s, w)| (s.clone(), w)).collect()
}

/// `--wakers` stacks: waits joined with their wakers (leaf first after `--`,
/// the waker's name last), one woken by an interrupt, one with no waker.
fn woken() -> Profile {
    let mut profile = Profile::new(Unit::Microseconds);
    let wait =
        vec![Frame::task("app"), user("main"), user("wait_for_byte"), kernel("do_syscall_64"), kernel("schedule")];
    let waker = vec![
        Frame::marker("--"),
        kernel("try_to_wake_up"),
        kernel("do_syscall_64"),
        inlined("write_inline"),
        user("wake_by_write"),
        user("thread_start"),
        Frame::task("burner"),
    ];
    profile.add([wait.clone(), waker].concat(), 900);
    let timer =
        vec![Frame::marker("--"), kernel("hrtimer_wakeup"), Frame::marker("[in interrupt]"), Frame::task("swapper/1")];
    profile.add([vec![Frame::task("app"), user("main"), user("sleep"), kernel("schedule")], timer].concat(), 100);
    profile.add(wait, 50);
    profile
}

fn without_locations(profile: Profile) -> Profile {
    Profile {
        unit: profile.unit,
        stacks: profile
            .stacks
            .into_iter()
            .map(|(s, w)| {
                (
                    s.into_iter()
                        .map(|f| Frame { module: None, file: None, line: None, ..(*f).clone() }.into())
                        .collect(),
                    w,
                )
            })
            .collect(),
    }
}

#[test]
fn waker_stacks_round_trip_through_folded_and_pprof() {
    let profile = woken();
    let text = folded_text(&profile);
    assert!(
        text.contains(
            "app;main;wait_for_byte;do_syscall_64_[k];schedule_[k];--;try_to_wake_up_[k];do_syscall_64_[k];write_inline_[i];wake_by_write;thread_start;burner 900"
        ),
        "{text}"
    );
    let loaded = formats::parse(text.as_bytes()).unwrap();
    assert_eq!(sorted_stacks(&loaded.profile), sorted_stacks(&without_locations(profile.clone())));
    let loaded = formats::parse(&render(&profile, Format::Pprof)).unwrap();
    assert_eq!(sorted_stacks(&loaded.profile), sorted_stacks(&profile));
}

#[test]
fn shares_count_the_wait_and_report_ranks_the_wakers() {
    let profile = woken();
    let shares = Shares::of(&profile);
    // Time is where the thread waited: a waker's frames are no function's share.
    assert_eq!(shares.get("schedule_[k]").self_weight, 1050);
    assert_eq!(shares.get("do_syscall_64_[k]").total_weight, 950);
    assert_eq!(shares.get("wake_by_write"), Default::default());
    let loaded = formats::parse(&render(&profile, Format::Pprof)).unwrap();
    let json: Value = serde_json::from_str(&report::render("w.pb.gz", &loaded, 10, Style::Json)).unwrap();
    let wakers = &json["wakers"];
    assert_eq!(wakers["joined"], 1000);
    assert_eq!(wakers["top_wakers"][0]["waker"], "burner");
    assert_eq!(wakers["top_wakers"][0]["total"], 900);
    assert_eq!(wakers["top_wakers"][1]["waker"], "swapper/1");
    let functions = wakers["top_waker_functions"].as_array().unwrap();
    let total_of = |name: &str| functions.iter().find(|r| r["function"] == name).map(|r| r["total"].clone());
    assert_eq!(total_of("wake_by_write"), Some(900.into()));
    // Inlined or not, one function; the interrupt's path counts too.
    assert_eq!(total_of("write_inline"), Some(900.into()));
    assert_eq!(total_of("hrtimer_wakeup_[k]"), Some(100.into()));
    assert_eq!(total_of("burner"), None);
    let plain = report::render("w.pb.gz", &loaded, 10, Style::Plain);
    assert!(plain.lines().any(|l| l.contains("85.71") && l.ends_with("burner")), "{plain}");
    // Without wakers, no waker section.
    let json: Value = serde_json::from_str(&report::render(
        "p",
        &formats::parse(folded_text(&split(3, 1)).as_bytes()).unwrap(),
        10,
        Style::Json,
    ))
    .unwrap();
    assert!(json.get("wakers").is_none());
}

/// A function in both halves is drawn twice: the wait's copy in the
/// palette's colour, the waker's in blue.
#[test]
fn svg_paints_the_waker_part_blue() {
    let svg = String::from_utf8(render(&woken(), Format::Svg)).unwrap();
    let fills: Vec<(u32, u32, u32)> = svg
        // The waker's copy keeps its `_[k]` (inferno strips the last mark, `_[w]`).
        .match_indices("<title>do_syscall_64")
        .map(|(at, _)| {
            let fill = &svg[at..][svg[at..].find("fill=\"rgb(").unwrap() + 10..];
            let rgb: Vec<u32> = fill[..fill.find(')').unwrap()].split(',').map(|c| c.trim().parse().unwrap()).collect();
            (rgb[0], rgb[1], rgb[2])
        })
        .collect();
    assert_eq!(fills.len(), 2, "{fills:?}");
    assert_eq!(fills.iter().filter(|(r, _, b)| b > &(r + 80)).count(), 1, "one blue copy: {fills:?}");
    assert_eq!(fills.iter().filter(|(r, _, b)| r > b).count(), 1, "one kernel-orange copy: {fills:?}");
}

#[test]
fn folded_round_trip_keeps_stacks_unit_and_health() {
    // The folded reader cannot know modules, files and lines: compare without them.
    let profile = without_locations(split_with_jit(300, 100));
    let loaded = formats::parse(folded_text(&profile).as_bytes()).unwrap();
    assert_eq!(loaded.profile.unit, profile.unit);
    assert_eq!(sorted_stacks(&loaded.profile), sorted_stacks(&profile));
    assert_eq!(loaded.comments, vec!["1.0 s, 100 samples, 0 lost, 0.0% of frames unresolved".to_string()]);
}

#[test]
fn pprof_round_trip_keeps_every_frame_detail() {
    let profile = split_with_jit(300, 100);
    let bytes = render(&profile, Format::Pprof);
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzipped");
    let loaded = formats::parse(&bytes).unwrap();
    assert_eq!(loaded.profile.unit, profile.unit);
    assert_eq!(sorted_stacks(&loaded.profile), sorted_stacks(&profile));
    assert!(loaded.comments.iter().any(|c| c.contains("100 samples")));
    let (a, b) = (Shares::of(&profile), Shares::of(&loaded.profile));
    assert_eq!(a.functions, b.functions);
    assert_eq!(b.get("jit_leaf_[j]").self_weight, 4);
    assert_eq!(b.get("JS:*hot /app.js:1_[j]").total_weight, 4);
}

#[test]
fn pprof_off_cpu_time_is_nanoseconds_and_reads_back_in_microseconds() {
    let mut profile = Profile::new(Unit::Microseconds);
    profile.add(vec![Frame::task("app"), user("wait")], 1500);
    let loaded = formats::parse(&render(&profile, Format::Pprof)).unwrap();
    assert_eq!(loaded.profile.unit, Unit::Microseconds);
    assert_eq!(loaded.profile.total(), 1500);
    let raw = formats::pprof::encode(&profile, &Context::minimal(&svg_options(), ""));
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("off-cpu") && text.contains("nanoseconds"));
}

/// `go tool pprof -top` on a written file shows the folded counts.
#[test]
fn go_tool_pprof_top_matches_folded_counts() {
    if Command::new("go").arg("version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but `go` is missing: install golang-go");
        eprintln!("note: `go` is not installed: skipping the go tool pprof round trip");
        return;
    }
    let profile = split(300, 100);
    let dir = std::env::temp_dir().join(format!("flameprof-go-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("split.pb.gz");
    std::fs::write(&path, render(&profile, Format::Pprof)).unwrap();
    let output = Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=samples", "-nodecount=1000", "-nodefraction=0"])
        .arg(&path)
        .env("HOME", &dir)
        .env("PPROF_TMPDIR", &dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "go tool pprof failed: {}", String::from_utf8_lossy(&output.stderr));
    // flat  flat%  sum%  cum  cum%  name
    let flat = |name: &str| -> (u64, f64) {
        let line = stdout
            .lines()
            .find(|l| l.trim_end().ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} not in:\n{stdout}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields[0].parse().unwrap(), fields[1].trim_end_matches('%').parse().unwrap())
    };
    let shares = Shares::of(&formats::parse(folded_text(&profile).as_bytes()).unwrap().profile);
    for (name, label) in [
        ("cpu_split::hot_three_quarters", "cpu_split::hot_three_quarters"),
        ("cpu_split::cold_one_quarter", "cpu_split::cold_one_quarter"),
        ("do_syscall_64", "do_syscall_64_[k]"),
    ] {
        let (count, percent) = flat(name);
        let folded = shares.get(label).self_weight;
        assert_eq!(count, folded, "{name}");
        assert!((percent - shares.percent(folded)).abs() < 0.01, "{name}: {percent} vs {}", shares.percent(folded));
    }
    assert!(stdout.contains("of 402 total"), "{stdout}");
}

#[test]
fn diff_of_a_profile_with_itself_is_empty_and_the_gate_passes() {
    let a = Shares::of(&split(300, 100));
    // Same shares from a recording twice as long.
    let b = Shares::of(&split(600, 200).tap_add_twice_the_syscalls());
    let changes = diff::changes(&a, &b);
    assert!(changes.is_empty(), "{changes:?}");
    assert!(diff::regressions(&changes, 0.0).is_empty());
    let text = diff::render("a", "b", &a, &b, &changes, 20, Style::Plain);
    assert!(text.contains("No function's share changed"));
}

trait Twice {
    fn tap_add_twice_the_syscalls(self) -> Self;
}

impl Twice for Profile {
    /// split(600, 200) has 2 syscall samples where the doubled profile has 4.
    fn tap_add_twice_the_syscalls(mut self) -> Self {
        let stack = self.stacks.keys().find(|s| s.last().is_some_and(|f| f.kind == FrameKind::Kernel)).unwrap().clone();
        self.add(stack, 2);
        self
    }
}

#[test]
fn diff_of_three_to_one_against_one_to_one_names_the_hot_function_and_fails_the_gate() {
    let base = Shares::of(&split(200, 200));
    let new = Shares::of(&split(300, 100));
    let changes = diff::changes(&base, &new);
    let regressions = diff::regressions(&changes, 5.0);
    assert_eq!(regressions.len(), 1, "{changes:?}");
    assert_eq!(regressions[0].function, "cpu_split::hot_three_quarters");
    assert!((regressions[0].total_delta() - 24.88).abs() < 0.01, "{}", regressions[0].total_delta());
    let line = diff::regression_line(regressions[0], 5.0);
    assert!(line.contains("cpu_split::hot_three_quarters") && !line.contains('\n'));
    assert_eq!(changes[0].function, "cpu_split::hot_three_quarters", "the biggest move comes first");
    assert!(changes.iter().any(|c| c.function == "cpu_split::cold_one_quarter" && c.total_delta() < -20.0));
    // A threshold above the growth passes.
    assert!(diff::regressions(&changes, 30.0).is_empty());
    let markdown = diff::render("base", "new", &base, &new, &changes, 20, Style::Markdown);
    assert!(markdown.contains("| `cpu_split::hot_three_quarters` |"), "{markdown}");
}

#[test]
fn diff_graph_marks_frames_only_in_one_profile() {
    let base = split(200, 200);
    let mut new = split(300, 100);
    new.add(vec![Frame::task("cpu_split"), user("main"), user("brand_new")], 50);
    let mut base_only = base.clone();
    base_only.add(vec![Frame::task("cpu_split"), user("main"), user("removed")], 50);
    let svg = String::from_utf8(diff::svg(&base_only, &new, "diff").unwrap()).unwrap();
    assert!(svg.contains("brand_new [new]"), "frames only in NEW are labelled");
    assert!(svg.contains(diff::BASE_ROOT), "stacks only in BASE are drawn under their own root");
    assert!(svg.contains("removed"));
    assert!(!svg.contains("hot_three_quarters [new]"));
}

#[test]
fn report_numbers_match_the_folded_counts() {
    let profile = split(300, 100);
    let loaded = formats::parse(folded_text(&profile).as_bytes()).unwrap();
    let json: Value = serde_json::from_str(&report::render("p.folded", &loaded, 10, Style::Json)).unwrap();
    assert_eq!(json["total"], 402);
    let top = &json["top_self"][0];
    assert_eq!(top["function"], "cpu_split::hot_three_quarters");
    assert_eq!(top["self"], 300);
    assert_eq!(top["self_percent"], 74.63); // 300 / 402
    let main = json["top_total"].as_array().unwrap().iter().find(|r| r["function"] == "main").unwrap();
    assert_eq!(main["total"], 402);
    assert_eq!(main["self"], 0);
    let kernel = json["top_self"].as_array().unwrap().iter().find(|r| r["function"] == "do_syscall_64_[k]").unwrap();
    assert_eq!(kernel["self"], 2);
    let plain = report::render("p.folded", &loaded, 10, Style::Plain);
    assert!(
        plain
            .lines()
            .any(|l| l.contains("74.63") && l.contains(" 300 ") && l.ends_with("cpu_split::hot_three_quarters")),
        "{plain}"
    );
    let markdown = report::render("p.folded", &loaded, 10, Style::Markdown);
    assert!(markdown.contains("| 74.63 | 74.63 | 300 | 300 | `cpu_split::hot_three_quarters` |"), "{markdown}");
}

#[test]
fn speedscope_output_is_a_valid_sampled_profile() {
    let profile = split(300, 100);
    let json: Value = serde_json::from_slice(&render(&profile, Format::Speedscope)).unwrap();
    assert_eq!(json["$schema"], formats::speedscope::SCHEMA);
    let frames = json["shared"]["frames"].as_array().unwrap();
    let p = &json["profiles"][0];
    assert_eq!(p["type"], "sampled");
    let samples = p["samples"].as_array().unwrap();
    let weights: Vec<u64> = p["weights"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap()).collect();
    assert_eq!(samples.len(), weights.len());
    assert_eq!(weights.iter().sum::<u64>(), profile.total());
    assert_eq!(p["endValue"].as_u64().unwrap(), profile.total());
    for sample in samples {
        for index in sample.as_array().unwrap() {
            assert!((index.as_u64().unwrap() as usize) < frames.len());
        }
    }
    let names: Vec<&str> = frames.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"do_syscall_64_[k]") && names.contains(&"cpu_split::main_[i]"));
    let hot = samples.iter().zip(&weights).find(|(s, _)| {
        let leaf = s.as_array().unwrap().last().unwrap().as_u64().unwrap() as usize;
        names[leaf] == "cpu_split::hot_three_quarters"
    });
    assert_eq!(hot.map(|h| *h.1), Some(300));
}

#[test]
fn folded_svg_input_has_no_header_lines() {
    // The SVG is drawn from the stacks only; the health goes into the subtitle.
    let svg = String::from_utf8(render(&split(3, 1), Format::Svg)).unwrap();
    assert!(!svg.contains("flameprof profile:"));
    assert!(svg.contains("100 samples, 0 lost"));
    assert!(folded_text(&split(3, 1)).starts_with(&folded::unit_header(Unit::Samples { frequency_hz: 999 })));
}

/// Garbage, truncations and bit flips give an error, never a panic.
#[test]
fn malformed_inputs_are_errors_not_panics() {
    let pprof = render(&split(300, 100), Format::Pprof);
    let raw = formats::pprof::encode(&split(300, 100), &Context::minimal(&svg_options(), "h"));
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        b"\x1f\x8b".to_vec(),
        b"\x1f\x8bgarbage".to_vec(),
        b"a;b;c notanumber\n".to_vec(),
        b"a;b;c\n".to_vec(),
        b" 12\n".to_vec(),
        vec![0xff; 64],
        vec![0x08; 3],
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    for case in &cases {
        assert!(formats::parse(case).is_err(), "{case:?}");
    }
    for end in 0..pprof.len() {
        let _ = formats::parse(&pprof[..end]).map(|_| ()).expect_err("a truncated gzip is an error");
    }
    for end in 0..raw.len() {
        let _ = formats::parse(&raw[..end]); // may decode a prefix of whole fields; must not panic
    }
    // Deterministic pseudo-random bit flips.
    let mut state = 0x2545f4914f6cdd1du64;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = raw.clone();
        let at = (state % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << ((state >> 60) % 8);
        let _ = formats::parse(&bytes);
    }
    let error = formats::parse(&raw[..raw.len() / 2]).err();
    assert!(error.is_none_or(|e| !e.contains('\n')));
}
