//! Kafka error codes as one readable line: Kafka's own name for the code
//! (UNKNOWN_TOPIC_OR_PARTITION, as in the broker logs and documentation),
//! then the broker's message when it sent one.

use anyhow::{bail, Result};
use kafka_protocol::error::ResponseError;

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
pub fn name(code: i16) -> String {
    let Some(e) = ResponseError::try_from_code(code) else { return "NONE".into() };
    if let ResponseError::Unknown(c) = e {
        return format!("error code {c}");
    }
    let camel = e.to_string();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// The error for `code`, if it is one, with the broker's message.
pub fn check(code: i16, message: Option<&str>) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => bail!("{} ({})", one_line(m), name(code)),
        None => bail!("{}", name(code)),
    }
}

/// Whether the protocol says a retry may succeed (leader moving, ...).
pub fn retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// Brokers' messages may span lines; the tools print one line per error.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(name(40), "INVALID_CONFIG");
        assert_eq!(name(9999), "error code 9999");
        assert_eq!(
            check(40, Some("Unknown topic config name: foo")).unwrap_err().to_string(),
            "Unknown topic config name: foo (INVALID_CONFIG)"
        );
        assert!(check(0, Some("x")).is_ok());
    }
}
