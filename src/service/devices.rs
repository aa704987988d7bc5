//! Readable device names from user agents ("Chrome on macOS", "Safari on iPhone"), with woothee
//! and a fallback for the short product tokens scripts and tests send.
use std::sync::LazyLock;

static PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

const UNKNOWN: &str = "UNKNOWN";

/// The name shown in session lists and mails; never empty.
pub fn device_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "Unknown device".into();
    };
    let parsed = PARSER.parse(ua);
    let browser = parsed
        .as_ref()
        .map(|r| r.name)
        .filter(|n| *n != UNKNOWN && !n.is_empty())
        .map(str::to_owned)
        .or_else(|| browser_token(ua));
    let os = parsed
        .as_ref()
        .map(|r| r.os)
        .filter(|o| *o != UNKNOWN && !o.is_empty())
        .map(os_label)
        .or_else(|| os_token(ua));
    let name = match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b,
        (None, Some(o)) => format!("Unknown browser on {o}"),
        (None, None) => "Unknown device".into(),
    };
    name.chars().take(100).collect()
}

fn os_label(os: &str) -> String {
    match os {
        "Mac OSX" | "Mac OS X" => "macOS".into(),
        other => other.to_owned(),
    }
}

fn browser_token(ua: &str) -> Option<String> {
    let lower = ua.to_lowercase();
    [
        ("edg", "Edge"),
        ("firefox", "Firefox"),
        ("chrome", "Chrome"),
        ("safari", "Safari"),
        ("curl", "curl"),
    ]
    .iter()
    .find(|(token, _)| lower.contains(token))
    .map(|(_, name)| (*name).to_owned())
}

fn os_token(ua: &str) -> Option<String> {
    let lower = ua.to_lowercase();
    [
        ("iphone", "iPhone"),
        ("ipad", "iPad"),
        ("android", "Android"),
        ("windows", "Windows"),
        ("macos", "macOS"),
        ("mac os", "macOS"),
        ("macintosh", "macOS"),
        ("linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| lower.contains(token))
    .map(|(_, name)| (*name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::device_name;

    #[test]
    fn common_and_short_user_agents_get_readable_names() {
        let cases = [
            ("Chrome/120 macOS", "Chrome on macOS"),
            ("Safari/17 iPhone", "Safari on iPhone"),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
                "Firefox on Windows 10",
            ),
            ("", "Unknown device"),
        ];
        for (ua, expected) in cases {
            assert_eq!(device_name(Some(ua)), expected, "{ua}");
        }
        assert_eq!(device_name(None), "Unknown device");
    }
}
