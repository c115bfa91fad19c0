//! Reading a Prometheus text exposition (or OpenMetrics text): just the samples, which is all the
//! agent's counters need. `# HELP`/`# TYPE` lines and exemplars are skipped.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line_number} of the metrics is not a sample ({reason}): {line}")]
pub struct ExpositionError {
    pub line_number: usize,
    pub line: String,
    pub reason: String,
}

/// Every sample in `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ExpositionError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(index, line)| {
            parse_sample(line).map_err(|reason| ExpositionError {
                line_number: index + 1,
                line: line.to_string(),
                reason,
            })
        })
        .collect()
}

/// The sum of every sample named `name` (over all label sets), or None when there is none.
pub fn sum(samples: &[Sample], name: &str) -> Option<f64> {
    let mut matching = samples.iter().filter(|s| s.name == name).peekable();
    matching.peek()?;
    Some(matching.map(|s| s.value).sum())
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    // OpenMetrics exemplars follow the value after ` # `.
    let line = line.split(" # ").next().unwrap_or(line).trim();
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("`{name}` is not a metric name"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end + 1..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let value_text = rest.split_whitespace().next().ok_or("no value")?;
    let value = parse_value(value_text).ok_or_else(|| format!("`{value_text}` is not a number"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// `key="value",...}` then the rest of the line.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (key, after_key) = text.split_once("=\"").ok_or("unterminated label set")?;
        let (value, rest) = quoted(after_key).ok_or("unterminated label value")?;
        labels.insert(key.trim().to_string(), value);
        text = rest;
    }
}

/// A label value up to its closing quote (escapes `\\`, `\"`, `\n`), and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_values_and_skips_comments_and_exemplars() {
        let text = "# HELP x_total X\n# TYPE x_total counter\n\
                    x_total{a=\"1\",b=\"q\\\"uote\"} 3\n\
                    x_total{a=\"2\"} 4.5 # {trace_id=\"abc\"} 1\n\
                    y 7 1700000000\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].labels["b"], "q\"uote");
        assert_eq!(sum(&samples, "x_total"), Some(7.5));
        assert_eq!(sum(&samples, "y"), Some(7.0));
        assert_eq!(sum(&samples, "z"), None);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it() {
        let error = parse("ok 1\nbroken{a=\"1\" 2\n").unwrap_err();
        assert_eq!(error.line_number, 2);
        assert!(error.reason.starts_with("unterminated"), "{error}");
        let error = parse("x_total abc\n").unwrap_err();
        assert!(error.reason.contains("not a number"), "{error}");
        assert!(parse("<html>\n").is_err());
    }
}
