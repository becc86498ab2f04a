//! How a failed Kubernetes request becomes a transient or permanent executor error.

use ballast_executor::ExecutorError;

/// Classifies `error` from the request that `doing` describes (`scale deployments.apps/default/web`).
///
/// Worth retrying: a conflict (409, another writer changed the object), a rate limit or a
/// disruption budget (429), a request timeout (408), any server error (5xx), and failures
/// to connect or to read an answer. Not worth retrying: everything else the server refused
/// (401, 403, 404, 422, ...), and configuration, TLS setup and request building errors.
/// The API server's `Status.message` is kept in the text.
pub(crate) fn classify(doing: &str, error: kube::Error) -> ExecutorError {
    match error {
        kube::Error::Api(status) => {
            let code = if status.code != 0 {
                status.code
            } else {
                code_of_reason(&status.reason)
            };
            let mut text = match (status.reason.is_empty(), status.message.is_empty()) {
                (false, false) => format!("{doing}: {code} {}: {}", status.reason, status.message),
                (true, false) => format!("{doing}: {code}: {}", status.message),
                (false, true) => format!("{doing}: {code} {}", status.reason),
                (true, true) => format!("{doing}: {code}"),
            };
            let causes: Vec<&str> = status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| c.message.as_str())
                .filter(|m| !m.is_empty() && !status.message.contains(m))
                .collect();
            if !causes.is_empty() {
                text.push_str(&format!(" ({})", causes.join("; ")));
            }
            if matches!(code, 408 | 409 | 429 | 500..=599) {
                ExecutorError::Transient(text)
            } else {
                ExecutorError::Permanent(text)
            }
        }
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)) => {
            ExecutorError::Transient(format!("{doing}: {}", chain(&e)))
        }
        e => ExecutorError::Permanent(format!("{doing}: {}", chain(&e))),
    }
}

/// The HTTP code a `Status` reason stands for, for a `Status` without a code.
fn code_of_reason(reason: &str) -> u16 {
    match reason {
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "NotFound" => 404,
        "AlreadyExists" | "Conflict" => 409,
        "Gone" | "Expired" => 410,
        "Invalid" => 422,
        "BadRequest" => 400,
        "MethodNotAllowed" => 405,
        "NotAcceptable" => 406,
        "RequestEntityTooLarge" => 413,
        "UnsupportedMediaType" => 415,
        "TooManyRequests" => 429,
        "Timeout" => 504,
        "ServerTimeout" | "ServiceUnavailable" => 503,
        "InternalError" => 500,
        _ => 0,
    }
}

/// An error and its causes, `outer: inner: innermost`, without repeating a cause that
/// the outer message already shows.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        let mut s = Status::failure(message, reason);
        s.code = code;
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn conflicts_rate_limits_and_server_errors_are_transient() {
        for code in [408, 409, 429, 500, 502, 503, 504] {
            let e = classify("scale x", api(code, "Whatever", "try later"));
            assert!(e.is_transient(), "{code}: {e:?}");
            assert!(e.message().contains("try later"), "{e:?}");
        }
    }

    #[test]
    fn refusals_are_permanent_and_keep_the_servers_message() {
        for code in [400, 401, 403, 404, 405, 415, 422] {
            let e = classify("scale x", api(code, "Refused", "no you don't"));
            assert!(!e.is_transient(), "{code}: {e:?}");
            assert_eq!(
                e.message(),
                format!("scale x: {code} Refused: no you don't")
            );
        }
    }

    #[test]
    fn a_status_without_a_code_is_classified_by_its_reason() {
        assert!(classify("x", api(0, "Conflict", "m")).is_transient());
        assert!(classify("x", api(0, "ServerTimeout", "m")).is_transient());
        assert!(!classify("x", api(0, "Forbidden", "m")).is_transient());
        assert!(!classify("x", api(0, "", "m")).is_transient());
    }
}
