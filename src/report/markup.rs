//! What every HTML section shares: escaping and the page's style sheet.

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline style of `report.html`: readable without scripts or network, printable.
pub const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:80rem}\
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.passed,.pass{color:#1e7e34}.failed,.fail{color:#c0392b}.skipped,.interrupted,.not-observed{color:#777}\
figure{margin:1.5rem 0}nav a{margin-right:1rem}p.verdict{font-size:1.25rem;font-weight:600}\
details summary{cursor:pointer;color:#555}td.message{white-space:pre-wrap;max-width:50rem}";
