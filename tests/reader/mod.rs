//! What a reader of a report sees, checked as they would: the LaTeX table
//! compiled by pdflatex in a one-column article, the HTML page opened in
//! headless Chromium with every chart's text measured.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Headless Chromium (Debian's `chromium`; the test command installs it).
pub fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "headless Chromium is needed (Debian package `chromium`; the test command installs it)",
        )
}

/// Chromium's flags for a local page, no network.
pub const CHROMIUM: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--allow-file-access-from-files",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Runs headless Chromium on the page at `page` with `extra` flags; its
/// standard output (a failure panics with its standard error).
pub fn chromium_on(page: &Path, extra: &[&str]) -> String {
    let out = Command::new(chromium())
        .args(CHROMIUM)
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Measures, in Chromium, every `<text>` of every SVG on the page:
/// returns (how many texts, the charts' titles in order, the texts whose
/// box leaves their SVG's viewBox).
pub fn svg_text_outside(page: &Path) -> (usize, Vec<String>, Vec<String>) {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = r#"<script>
const bad = [];
const svgs = document.querySelectorAll('svg');
svgs.forEach((svg, k) => {
  const vb = svg.viewBox.baseVal;
  svg.querySelectorAll('text').forEach(t => {
    const b = t.getBBox();
    if (b.x < -0.5 || b.y < -0.5 || b.x + b.width > vb.width + 0.5 || b.y + b.height > vb.height + 0.5)
      bad.push(k + ': "' + t.textContent + '" at ' + [b.x, b.y, b.width, b.height].map(Math.round).join(',') + ' in ' + vb.width + 'x' + vb.height);
  });
});
const titles = Array.from(svgs).map(s => s.getAttribute('aria-label'));
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify({ texts: document.querySelectorAll('svg text').length, titles, bad });
document.body.appendChild(out);
</script></body>"#;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("page.html");
    std::fs::write(&copy, html.replace("</body>", probe)).unwrap();
    let dom = chromium_on(&copy, &["--dump-dom"]);
    let start = dom.find("<pre id=\"probe\">").expect("the probe ran") + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    (
        v["texts"].as_u64().unwrap() as usize,
        strings("titles"),
        strings("bad"),
    )
}

/// Compiles a LaTeX table in a minimal one-column article with the
/// packages its `% needs:` line names; returns pdflatex's log, or panics
/// with it on an error or an overfull box.
pub fn compile_table(tex: &Path) -> String {
    let text = std::fs::read_to_string(tex).unwrap();
    let needs: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("% needs:"))
        .unwrap_or_else(|| panic!("{}: no `% needs:` line", tex.display()))
        .split_whitespace()
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("table.tex"), &text).unwrap();
    let doc = format!(
        "\\documentclass{{article}}\n{}\n\\begin{{document}}\n\\input{{table.tex}}\n\\end{{document}}\n",
        needs.join("\n")
    );
    std::fs::write(dir.path().join("doc.tex"), doc).unwrap();
    let out = Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "doc.tex"])
        .current_dir(dir.path())
        .output()
        .expect("pdflatex is needed (Debian package `texlive-latex-recommended`; the test command installs it)");
    let log = std::fs::read_to_string(dir.path().join("doc.log")).unwrap_or_default();
    assert!(
        out.status.success() && dir.path().join("doc.pdf").is_file(),
        "{}: pdflatex failed\n{log}",
        tex.display()
    );
    assert!(
        !log.contains("Overfull"),
        "{}: an overfull box\n{log}",
        tex.display()
    );
    log
}
