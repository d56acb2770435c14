//! Twilio's `SipResponseCode` (on the final status callback) in plain words,
//! so a person learns *why* a call was not answered, not only that it wasn't.

/// A short reason for a final SIP response code, or `None` for codes that say
/// nothing useful to a person (200, unknown codes).
pub fn reason(code: &str) -> Option<&'static str> {
    Some(match code.trim() {
        "404" => "the number was not found (SIP 404)",
        "403" => "the call was refused by the network (SIP 403)",
        "408" => "the network timed out (SIP 408)",
        "410" => "the number is no longer in service (SIP 410)",
        "480" => "the phone was unavailable (SIP 480)",
        "484" => "the number is incomplete (SIP 484)",
        "486" => "the line was busy (SIP 486)",
        "487" => "it rang with no answer (SIP 487)",
        "488" | "606" => "the phone could not take the call (SIP 488)",
        "500" | "502" | "503" => "the phone network failed (SIP 5xx)",
        "600" => "the callee is busy everywhere (SIP 600)",
        "603" => "the call was declined (SIP 603)",
        "604" => "the number does not exist (SIP 604)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn common_codes_read_plainly() {
        assert_eq!(reason("486"), Some("the line was busy (SIP 486)"));
        assert!(reason("487").unwrap().contains("no answer"));
        assert!(reason("480").unwrap().contains("unavailable"));
        assert!(reason("404").unwrap().contains("not found"));
        assert_eq!(reason("200"), None);
        assert_eq!(reason(""), None);
    }
}
