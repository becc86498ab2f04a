//! Series selectors for pushed metrics: a metric name with optional exact label matches,
//! as in PromQL (`queue_depth` or `queue_depth{queue="emails",region="eu"}`). A selector
//! matching several series reads their sum.

use std::collections::BTreeMap;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name.
    pub name: String,
    /// Labels that must be equal.
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Parses `name` or `name{label="value",...}`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        if !is_name(name) {
            return Err(format!(
                "`{name}` is not a metric name (letters, digits, `_` and `:`, not starting with a digit)"
            ));
        }
        let mut labels = BTreeMap::new();
        if let Some(rest) = rest {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or("a label list is `{label=\"value\",...}` and ends the selector")?;
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (label, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("`{pair}` is not `label=\"value\"`"))?;
                let label = label.trim();
                if !is_name(label) || label.contains(':') {
                    return Err(format!("`{label}` is not a label name"));
                }
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .filter(|v| !v.contains('"'))
                    .ok_or_else(|| {
                        format!(
                            "the value of `{label}` must be in double quotes (only `=` matches)"
                        )
                    })?;
                if labels.insert(label.to_owned(), value.to_owned()).is_some() {
                    return Err(format!("label `{label}` appears twice"));
                }
            }
        }
        Ok(Selector {
            name: name.to_owned(),
            labels,
        })
    }

    /// Whether a series with this name and these labels matches.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.name == name
            && self
                .labels
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_matches_parse() {
        let s = Selector::parse(r#"queue_depth{queue="emails", region="eu"}"#).unwrap();
        assert_eq!(s.name, "queue_depth");
        assert_eq!(s.labels.len(), 2);
        let mut series = BTreeMap::new();
        series.insert("queue".to_owned(), "emails".to_owned());
        assert!(!s.matches("queue_depth", &series), "region missing");
        series.insert("region".to_owned(), "eu".to_owned());
        series.insert("host".to_owned(), "a".to_owned());
        assert!(s.matches("queue_depth", &series), "extra labels are fine");
        assert!(!s.matches("queue_size", &series));
        assert_eq!(Selector::parse("load").unwrap().labels.len(), 0);
        assert_eq!(Selector::parse("load{}").unwrap().labels.len(), 0);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("9lives", "not a metric name"),
            ("rate(x[5m])", "not a metric name"),
            ("x{a=b}", "double quotes"),
            ("x{a!=\"b\"}", "not a label name"),
            ("x{a=\"1\",a=\"2\"}", "twice"),
            ("x{a=\"1\"", "ends the selector"),
            ("x{a}", "not `label=\"value\"`"),
        ] {
            let e = Selector::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
