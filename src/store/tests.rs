//! The store's publishing protocol: visibility, damage checks, races,
//! claims, and a crash at every step of a publish.

use super::*;

fn status() -> Status {
    Status {
        state: "done".into(),
        seconds: 1.5,
        mpx_version: "test".into(),
        device: Some("cpu".into()),
        build: None,
    }
}

#[test]
fn a_stage_is_visible_only_once_published() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let b = store.begin("abc").unwrap();
    std::fs::write(b.dir.join("metrics.json"), "{}").unwrap();
    assert!(!store.is_done("abc"));
    let at = b.publish(&status()).unwrap();
    assert!(store.is_done("abc"));
    assert!(at.join("metrics.json").is_file());
    // An abandoned build leaves nothing behind.
    let b = store.begin("def").unwrap();
    let tmp = b.dir.clone();
    drop(b);
    assert!(!tmp.exists() && !store.is_done("def"));
}

/// What was published is what is handed out: a file truncated, edited
/// in place, removed or added since is found, and the stage discarded.
#[test]
fn damage_since_publishing_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let publish = |hash: &str| {
        let b = store.begin(hash).unwrap();
        std::fs::create_dir(b.dir.join("sub")).unwrap();
        std::fs::write(b.dir.join("model.safetensors"), "weights").unwrap();
        std::fs::write(b.dir.join("sub/log.jsonl"), "{}\n").unwrap();
        b.publish(&status()).unwrap()
    };
    let at = publish("a");
    assert_eq!(store.damage("a"), None);
    std::fs::write(at.join("model.safetensors"), "weigh").unwrap();
    assert!(store.damage("a").unwrap().contains("5 bytes, was 7"));
    std::fs::write(at.join("model.safetensors"), "WEIGHTS").unwrap();
    assert!(store.damage("a").unwrap().contains("changed"));
    std::fs::write(at.join("model.safetensors"), "weights").unwrap();
    std::fs::remove_file(at.join("sub/log.jsonl")).unwrap();
    assert!(store
        .damage("a")
        .unwrap()
        .contains("sub/log.jsonl` is missing"));
    let at = publish("b");
    std::fs::write(at.join("extra"), "x").unwrap();
    assert!(store.damage("b").unwrap().contains("`extra` was added"));
    store.discard("b").unwrap();
    assert!(!store.is_done("b") && !at.exists());
}

#[test]
fn a_second_publisher_of_one_hash_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b) = (store.begin("h").unwrap(), store.begin("h").unwrap());
    std::fs::write(a.dir.join("who"), "a").unwrap();
    std::fs::write(b.dir.join("who"), "b").unwrap();
    a.publish(&status()).unwrap();
    b.publish(&status()).unwrap();
    assert_eq!(
        std::fs::read_to_string(store.stage_dir("h").join("who")).unwrap(),
        "a"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn claims_exclude_each_other_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let held = store.try_claim("x").unwrap().expect("free");
    assert!(store.try_claim("x").unwrap().is_none());
    assert!(store.try_claim("y").unwrap().is_some());
    drop(held);
    assert!(store.try_claim("x").unwrap().is_some());
}

/// A crash between any two writes of a publish leaves no stage or a
/// complete one: never a visible stage with files missing. Each run stops
/// after one more step and is forgotten (no cleanup runs, as in a crash);
/// the next `mpx run` sweeps what is left.
#[test]
fn a_crash_at_any_step_of_a_publish_leaves_no_stage_or_a_whole_one() {
    for steps in 0..=3 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut b = store.begin("h").unwrap();
        std::fs::write(b.dir.join("metrics.json"), "{}").unwrap();
        std::fs::write(b.dir.join("model.safetensors"), "weights").unwrap();
        b.steps(&status(), steps).unwrap();
        std::mem::forget(b);
        let done = store.is_done("h");
        assert_eq!(done, steps == 3, "after {steps} steps");
        if done {
            assert_eq!(store.damage("h"), None);
            assert!(store.stage_dir("h").join("model.safetensors").is_file());
        } else {
            assert!(!store.stage_dir("h").exists(), "after {steps} steps");
            assert_eq!(store.sweep_tmp().unwrap(), 1);
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}

/// A write that fails during a publish (here the status: a folder stands
/// where it goes) is an error naming the file, and leaves no stage.
#[test]
fn a_failed_write_during_a_publish_leaves_no_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let b = store.begin("h").unwrap();
    std::fs::write(b.dir.join("metrics.json"), "{}").unwrap();
    std::fs::create_dir(b.dir.join(STATUS)).unwrap();
    let e = b.publish(&status()).unwrap_err();
    assert!(e.to_string().contains("status.json"), "{e}");
    assert!(!store.is_done("h") && !store.stage_dir("h").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}
