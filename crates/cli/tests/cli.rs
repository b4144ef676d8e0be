//! End-to-end tests of the `stokehold` binary in temporary folders.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

fn stokehold(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stokehold"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// 3 classes × 10 images, plus one empty file.
fn tree(root: &Path) {
    for c in ["cat", "dog", "eel"] {
        fs::create_dir_all(root.join(c)).unwrap();
        for i in 0..10 {
            fs::write(root.join(c).join(format!("{i}.png")), png(20 + i, 10)).unwrap();
        }
    }
    fs::write(root.join("dog/broken.png"), b"").unwrap();
}

#[test]
fn index_writes_manifest_summary_and_report() {
    let d = tempfile::tempdir().unwrap();
    tree(&d.path().join("data"));
    let out = stokehold(
        &["index", "data", "-o", "m.jsonl", "--report", "r.json"],
        d.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    assert!(
        stdout.contains("30 samples, 3 classes, 0 boxes; skipped 1 (empty_file 1)"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).is_empty(),
        "no progress bar off a terminal: {}",
        text(&out.stderr)
    );
    let manifest = fs::read_to_string(d.path().join("m.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 31);
    assert!(manifest
        .lines()
        .nth(1)
        .unwrap()
        .contains("\"path\":\"data/cat/0.png\""));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["samples"], 30);
    assert_eq!(report["findings"][0]["kind"], "empty_file");
    assert!(report["findings"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("dog/broken.png"));
}

#[test]
fn strict_fails_lists_findings_and_writes_no_manifest() {
    let d = tempfile::tempdir().unwrap();
    tree(&d.path().join("data"));
    let out = stokehold(
        &[
            "index", "data", "-o", "m.jsonl", "--strict", "--report", "r.json",
        ],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken.png: empty_file"), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("error: strict mode: 1 problem(s)"),
        "{stderr}"
    );
    assert!(!d.path().join("m.jsonl").exists());
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], false);
}

#[test]
fn errors_are_one_line_and_usage_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let out = stokehold(&["index", "nowhere", "-o", "m.jsonl"], d.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: nowhere: no such file or directory"
    );
    let out = stokehold(&["index", "nowhere"], d.path());
    assert_eq!(out.status.code(), Some(2));
    let out = stokehold(
        &["index", ".", "-o", "m.jsonl", "--format", "parquet"],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn split_is_deterministic_and_stratified() {
    let d = tempfile::tempdir().unwrap();
    tree(&d.path().join("data"));
    assert!(
        stokehold(&["index", "data", "-o", "m.jsonl", "-q"], d.path())
            .status
            .success()
    );
    let out = stokehold(
        &["split", "m.jsonl", "--val", "0.2", "--seed", "5"],
        d.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("m.train.jsonl: 24 samples; m.val.jsonl: 6 samples"),
        "{}",
        text(&out.stdout)
    );
    let val = fs::read_to_string(d.path().join("m.val.jsonl")).unwrap();
    for class in ["cat", "dog", "eel"] {
        assert_eq!(
            val.matches(&format!("\"class\":\"{class}\"")).count(),
            2,
            "{val}"
        );
    }
    let out = stokehold(
        &[
            "split",
            "m.jsonl",
            "--val",
            "0.2",
            "--seed",
            "5",
            "--val-out",
            "again.jsonl",
        ],
        d.path(),
    );
    assert!(out.status.success());
    assert_eq!(
        fs::read_to_string(d.path().join("again.jsonl")).unwrap(),
        val
    );
}

#[test]
fn index_of_a_manifest_rechecks_its_files() {
    let d = tempfile::tempdir().unwrap();
    tree(&d.path().join("data"));
    assert!(
        stokehold(&["index", "data", "-o", "m.jsonl", "-q"], d.path())
            .status
            .success()
    );
    fs::remove_file(d.path().join("data/eel/3.png")).unwrap();
    let out = stokehold(&["index", "m.jsonl", "-o", "m2.jsonl"], d.path());
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("29 samples") && text(&out.stdout).contains("missing_file 1"),
        "{}",
        text(&out.stdout)
    );
}
