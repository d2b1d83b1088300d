//! The shipped unit file, scored as an operator would score it:
//! `systemd-analyze security` must report an exposure of 2.0 or less, and
//! `systemd-analyze verify` must print nothing (it only *warns* about
//! misspelt settings and still exits 0, so any output is a failure).

use std::path::Path;
use std::process::Command;

fn unit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/authwatch.service")
}

fn have_systemd_analyze() -> bool {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("systemd-analyze is not installed: skipping (Debian package `systemd`)");
    }
    ok
}

#[test]
fn exposure_is_at_most_two() {
    if !have_systemd_analyze() {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit())
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line in:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score <= 2.0, "exposure {score} > 2.0: {line}");
}

#[test]
fn verify_is_clean() {
    if !have_systemd_analyze() {
        return;
    }
    // verify checks that ExecStart= names an executable: point it at the
    // binary under test; everything else is the shipped unit, unchanged.
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(unit()).expect("read unit");
    let text = text.replace("/usr/bin/authwatch", env!("CARGO_BIN_EXE_authwatch"));
    let copy = dir.path().join("authwatch.service");
    std::fs::write(&copy, text).expect("write unit copy");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--no-pager"])
        .arg(&copy)
        .output()
        .expect("run systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}
