//! Prometheus text exposition (format 0.0.4) read back into samples: what a scrape of an
//! exporter says, for cases that judge the numbers rather than the presence of a name.

use std::collections::BTreeMap;

/// One sample line: metric name, labels and value (a timestamp, if any, is dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A line that is not a sample, comment or blank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exposition line {line}: {reason}: `{text}`")]
pub struct ExpositionError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Parse a text exposition into its samples, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ExpositionError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            parse_line(l.trim()).map_err(|reason| ExpositionError {
                line: i + 1,
                reason,
                text: l.chars().take(120).collect(),
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Result<Sample, &'static str> {
    let name_end = line.find(['{', ' ', '\t']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name");
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end + 1..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let value = rest.split_whitespace().next().ok_or("no value")?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value: parse_value(value).ok_or("value is not a number")?,
    })
}

/// `a="x",b="y"} rest` → the labels and `rest`.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), &'static str> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without `=`")?;
        let key = s[..eq].trim().to_string();
        let mut chars = s[eq + 1..].trim_start().char_indices();
        let start = s.len() - s[eq + 1..].trim_start().len();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value not quoted");
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => value.push('\n'),
                (true, c) => value.push(c),
                (false, '\\') => {
                    escaped = true;
                    continue;
                }
                (false, '"') => {
                    end = Some(start + i + 1);
                    break;
                }
                (false, c) => value.push(c),
            }
            escaped = false;
        }
        let end = end.ok_or("unterminated label value")?;
        labels.insert(key, value);
        s = &s[end..];
    }
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_labels_escapes_and_timestamps() {
        let text = "# HELP x A help.\n# TYPE x gauge\n\
            x 1\n\
            y{a=\"1\",b=\"q\\\"uo\\\\te\\n\"} 2.5 1700000000000\n\
            z{le=\"+Inf\",} +Inf\n\n";
        let s = parse(text).expect("parse");
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].name.as_str(), s[0].value), ("x", 1.0));
        assert!(s[0].labels.is_empty());
        assert_eq!(s[1].labels["a"], "1");
        assert_eq!(s[1].labels["b"], "q\"uo\\te\n");
        assert_eq!(s[1].value, 2.5);
        assert_eq!(s[2].labels["le"], "+Inf");
        assert!(s[2].value.is_infinite());
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let e = parse("ok 1\nbad{a=1} 2\n").expect_err("unquoted");
        assert_eq!(e.line, 2);
        assert_eq!(e.reason, "label value not quoted");
        assert_eq!(parse("x{a=\"1\" 2\n").expect_err("open").line, 1);
        assert_eq!(
            parse("x abc\n").expect_err("value").reason,
            "value is not a number"
        );
        assert_eq!(parse("<html>\n").expect_err("html").reason, "no value");
    }
}
