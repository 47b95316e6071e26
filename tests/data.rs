//! Records from JSON Lines and Parquet: every accepted shape, and every bad
//! record rejected with its file and line.

use std::path::PathBuf;

use mpx::data::{load, Kind, Message, Prompt, Record};
use polars::prelude::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn pair(r: &Record) -> &mpx::data::PairRecord {
    match r {
        Record::Pair(p) => p,
        other => panic!("not a pair: {other:?}"),
    }
}

#[test]
fn reads_every_pair_shape() {
    let dir = tempfile::tempdir().unwrap();
    // MMPR's `image` is a path relative to the file, resolved on reading.
    std::fs::create_dir(dir.path().join("img")).unwrap();
    image::RgbImage::new(4, 4)
        .save(dir.path().join("img/1.png"))
        .unwrap();
    let p = write(
        &dir,
        "pairs.jsonl",
        concat!(
            r#"{"prompt": "2+2=", "chosen": "4", "rejected": "5"}"#,
            "\n",
            "\n",
            r#"{"question": "What is shown?", "chosen": "a cat", "rejected": "a dog", "answer_gt": "cat", "image": "img/1.png"}"#,
            "\n",
            r#"{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "hello"}], "rejected": [{"role": "assistant", "content": "go away"}]}"#,
            "\n",
            r#"{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]}"#,
            "\n",
            r#"{"question": "1+1", "chosen": "2", "rejected": "3", "answer_gt": 2}"#,
            "\n",
        ),
    );
    let records = load(&p, Kind::Pairs).unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(pair(&records[0]).prompt, Prompt::Text("2+2=".into()));
    let mmpr = pair(&records[1]);
    let resolved = dir.path().join("img/1.png").display().to_string();
    assert_eq!(mmpr.images, vec![resolved]);
    assert_eq!(mmpr.answer_gt.as_deref(), Some("cat"));
    let chat = pair(&records[2]);
    assert_eq!(
        (chat.chosen.as_str(), chat.rejected.as_str()),
        ("hello", "go away")
    );
    assert_eq!(chat.prompt.plain(), "user: hi\nassistant: ");
    let implicit = pair(&records[3]);
    assert_eq!(
        implicit.prompt,
        Prompt::Chat(vec![Message {
            role: "user".into(),
            content: "q".into()
        }])
    );
    assert_eq!(implicit.chosen, "good");
    assert_eq!(pair(&records[4]).answer_gt.as_deref(), Some("2"));
}

#[test]
fn bad_records_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"prompt": "q", "chosen": "same", "rejected": "same"}"#,
            "`chosen` and `rejected` are identical",
        ),
        (
            r#"{"prompt": "q", "chosen": "  ", "rejected": "b"}"#,
            "`chosen` is empty",
        ),
        (
            r#"{"prompt": "q", "chosen": "a"}"#,
            "a pair needs `chosen` and `rejected`; found `chosen`, `prompt`",
        ),
        (
            r#"{"prompt": 3, "chosen": "a", "rejected": "b"}"#,
            "`prompt` must be a string or a list of messages, not a number",
        ),
        (
            r#"{"prompt": "q", "chosen": "a", "rejected": "b""#,
            "not a JSON record",
        ),
        (r"[1, 2]", "expected a JSON object"),
        (
            r#"{"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}"#,
            "`prompt[0]` must have a string `role` and a string (or list of parts) `content`",
        ),
        (r#""a string""#, "expected a JSON object, found a string"),
        (
            r#"{"prompt": "q", "chosen": "a", "rejected": "b"} {}"#,
            "not a JSON record: trailing characters (column 49)",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": [{"type": "video"}]}], "chosen": "a", "rejected": "b"}"#,
            "`prompt[0].content` parts must be",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}], "chosen": "a", "rejected": "b"}"#,
            "the prompt places 1 image(s)",
        ),
        (
            r#"{"prompt": "q", "chosen": "a", "rejected": "b", "image": " "}"#,
            "`image` is empty",
        ),
    ];
    for (i, (line, message)) in cases.iter().enumerate() {
        let text = format!(
            "{}\n\n{line}\n",
            r#"{"prompt": "ok", "chosen": "a", "rejected": "b"}"#
        );
        let p = write(&dir, &format!("bad{i}.jsonl"), &text);
        let err = load(&p, Kind::Pairs).unwrap_err();
        assert_eq!(err.line, Some(3), "{line}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}:3: ", p.display())),
            "{shown}"
        );
        assert!(shown.contains(message), "{shown} should say {message}");
    }
    // A byte that is not UTF-8 is named with its column.
    let p = dir.path().join("latin1.jsonl");
    std::fs::write(
        &p,
        b"{\"prompt\": \"caf\xe9\", \"chosen\": \"a\", \"rejected\": \"b\"}\n",
    )
    .unwrap();
    let err = load(&p, Kind::Pairs).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "latin1.jsonl:1: not UTF-8 text: byte 0xE9 at column 16; save the file as UTF-8"
        ),
        "{err}"
    );
    let empty = write(&dir, "empty.jsonl", "\n\n");
    assert!(load(&empty, Kind::Pairs)
        .unwrap_err()
        .to_string()
        .contains("has no records"));
}

#[test]
fn reads_byte_order_marks_crlf_and_content_parts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), png()).unwrap();
    let p = write(
        &dir,
        "windows.jsonl",
        concat!(
            "\u{feff}",
            r#"{"prompt": "q", "chosen": "a", "rejected": "b"}"#,
            "\r\n",
            r#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}], "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "a cat"}]}], "rejected": "a dog", "images": ["a.png"]}"#,
            "\r\n",
        ),
    );
    let records = load(&p, Kind::Pairs).unwrap();
    assert_eq!(pair(&records[0]).prompt, Prompt::Text("q".into()));
    let parts = pair(&records[1]);
    assert_eq!(
        parts.prompt,
        Prompt::Chat(vec![
            Message {
                role: "system".into(),
                content: "Be brief.".into()
            },
            Message {
                role: "user".into(),
                content: "<image>\nWhat is it?".into()
            },
        ])
    );
    assert_eq!((parts.chosen.as_str(), parts.images.len()), ("a cat", 1));
}

/// A 1 × 1 PNG.
fn png() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(1, 1)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

#[test]
fn reads_sft_and_problem_records() {
    let dir = tempfile::tempdir().unwrap();
    let sft = write(
        &dir,
        "sft.jsonl",
        concat!(
            r#"{"prompt": "Q: 1+1", "completion": "2"}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}"#,
            "\n",
        ),
    );
    let records = load(&sft, Kind::Sft).unwrap();
    assert!(matches!(&records[1], Record::Sft(s) if s.completion == "yo"));
    let problems = write(&dir, "p.jsonl", r#"{"question": "3*4", "answer": 12}"#);
    assert!(
        matches!(&load(&problems, Kind::Problems).unwrap()[0], Record::Problem(p) if p.answer_gt == "12")
    );
    let bad = write(&dir, "q.jsonl", r#"{"question": "3*4"}"#);
    assert!(load(&bad, Kind::Problems)
        .unwrap_err()
        .to_string()
        .contains("q.jsonl:1: a problem needs `answer_gt`"));
}

#[test]
fn reads_parquet_with_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.parquet");
    let mut df = df!(
        "question" => ["2+2=", "3+3="],
        "chosen" => ["4", "6"],
        "rejected" => ["5", "6"],
        "answer_gt" => ["4", "6"],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let err = load(&path, Kind::Pairs).unwrap_err();
    assert_eq!(err.line, Some(2), "row 2 has identical chosen and rejected");
    assert!(err.to_string().contains("are identical"));

    let mut good =
        df!("prompt" => ["a", "b"], "chosen" => ["x", "y"], "rejected" => ["z", "w"]).unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut good)
        .unwrap();
    let records = load(&path, Kind::Pairs).unwrap();
    assert_eq!(pair(&records[1]).rejected, "w");
}
