//! TwiML documents: building the `<Connect><Stream>` that bridges a call to our server, the key press that plays digits and reconnects it (`<Play digits>` + `<Connect><Stream>`), the polite `<Say>`+`<Hangup>` (in the call's language, with a voice that speaks it), and parsing them back for the simulator and tests.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::domain::language::{BaseLanguage, Language};

/// The longest TwiML document Twilio accepts inline in the `Twiml` parameter
/// of a call (docs section 1.2): a document must be strictly shorter.
pub const MAX_DOCUMENT_CHARS: usize = 4000;

/// The limit on one `<Parameter>`: `name` + `value` must be strictly shorter
/// than this many characters (docs section 4.3).
pub const MAX_PARAMETER_CHARS: usize = 500;

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Errors building TwiML that Twilio would refuse, or parsing a document that
/// is not usable TwiML.
#[derive(Debug, thiserror::Error)]
pub enum TwimlError {
    /// A `<Parameter>` whose name plus value reaches the 500-character limit;
    /// Twilio would reject the stream, so the call would fail after answering.
    #[error("stream parameter {name:?} is {len} characters (name + value); Twilio allows fewer than 500")]
    ParameterTooLong {
        /// The parameter's name.
        name: String,
        /// Length of name + value in characters.
        len: usize,
    },
    /// The whole document reaches the 4000-character limit of inline `Twiml`.
    #[error("TwiML document is {len} characters; Twilio accepts fewer than 4000 inline")]
    DocumentTooLong {
        /// Length of the document in characters.
        len: usize,
    },
    /// The text is not well-formed XML or not a `<Response>` document.
    #[error("invalid TwiML: {0}")]
    Parse(String),
}

/// Is `c` allowed in an XML 1.0 document at all (even as a character reference)?
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Shared escaper: `attr` selects attribute escaping (quotes and tab/LF/CR
/// as character references) over element-text escaping.
fn escape_with(value: &str, attr: bool) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '&' | '<' | '>')
            || (attr && matches!(c, '"' | '\t' | '\n' | '\r'))
            || !is_xml_char(c)
    };
    if !value.chars().any(needs) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' if attr => out.push_str("&#09;"),
            '\n' if attr => out.push_str("&#10;"),
            '\r' if attr => out.push_str("&#13;"),
            // Not representable in XML 1.0, not even as a reference: Twilio
            // would refuse the whole document, so substitute instead.
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// XML attribute escaping as twilio-python does it: `& < > "` become entity
/// references and tab/LF/CR become `&#09;` `&#10;` `&#13;`, so that XML
/// attribute-value normalisation does not turn them into spaces on Twilio's
/// side. `'` and non-ASCII are left as they are (we always quote with `"`).
///
/// Deviation from twilio-python: characters XML 1.0 cannot carry at all
/// (other C0 controls, U+FFFE, U+FFFF) are replaced by U+FFFD instead of
/// producing a document Twilio would refuse.
pub fn escape_attr(value: &str) -> Cow<'_, str> {
    escape_with(value, true)
}

/// Escaping for element text (`<Say>`): `& < >` only, as ElementTree does.
fn escape_text(value: &str) -> Cow<'_, str> {
    escape_with(value, false)
}

/// The document that opens a bidirectional Media Stream, byte-for-byte as
/// twilio-python's `VoiceResponse` writes it (attributes sorted by name, no
/// whitespace between elements, ` />` for empty elements):
///
/// `<?xml ...?><Response><Connect><Stream statusCallback=".." statusCallbackMethod="POST" url=".."><Parameter name=".." value=".." />...</Stream></Connect></Response>`
///
/// Custom data travels as `<Parameter>` elements because the stream URL may
/// not carry a query string (Twilio error 31920); `stream_url` should be a
/// `wss://` URL without query (not enforced, so tests can use `ws://`).
///
/// Refuses a parameter whose name+value is 500 characters or more, and a
/// document of 4000 characters or more (the inline `Twiml` limit), because
/// Twilio would otherwise fail the call only after the restaurant answered.
pub fn connect_stream(
    stream_url: &str,
    stream_status_callback: Option<&str>,
    parameters: &[(String, String)],
) -> Result<String, TwimlError> {
    response(None, stream_url, stream_status_callback, parameters)
}

/// The document that presses keys on a live call and then carries on the
/// conversation: `<Play digits>` followed by a new `<Connect><Stream>`, as
/// twilio-python writes it:
///
/// `<?xml ...?><Response><Play digits="w2" /><Connect><Stream ..>..</Stream></Connect></Response>`
///
/// Sent as a call update ([`super::rest::TwilioClient::redirect_twiml`]), it
/// replaces the running TwiML: Twilio ends the current stream, plays the keys
/// to the callee and opens a new stream to `stream_url` with these
/// `parameters` and a new `streamSid` (docs/protocol/twilio.md 5.9).
/// The parameters should be the first stream's, plus what marks the new
/// stream as the call's continuation
/// ([`crate::domain::StreamContinuation::next_stream_parameters`]). Same
/// limits as [`connect_stream`].
pub fn play_digits_then_connect_stream(
    digits: &PlayDigits,
    stream_url: &str,
    stream_status_callback: Option<&str>,
    parameters: &[(String, String)],
) -> Result<String, TwimlError> {
    response(Some(digits), stream_url, stream_status_callback, parameters)
}

/// `<Response>[<Play digits>]<Connect><Stream>…</Connect></Response>`, checked
/// against Twilio's limits.
fn response(
    play: Option<&PlayDigits>,
    stream_url: &str,
    stream_status_callback: Option<&str>,
    parameters: &[(String, String)],
) -> Result<String, TwimlError> {
    let mut doc = String::with_capacity(256 + parameters.len() * 64);
    doc.push_str(XML_DECLARATION);
    doc.push_str("<Response>");
    if let Some(digits) = play {
        // The digits are keys and pauses only: nothing to escape.
        doc.push_str("<Play digits=\"");
        doc.push_str(digits.as_str());
        doc.push_str("\" />");
    }
    doc.push_str("<Connect><Stream");
    if let Some(callback) = stream_status_callback {
        doc.push_str(" statusCallback=\"");
        doc.push_str(&escape_attr(callback));
        doc.push_str("\" statusCallbackMethod=\"POST\"");
    }
    doc.push_str(" url=\"");
    doc.push_str(&escape_attr(stream_url));
    doc.push('"');
    if parameters.is_empty() {
        doc.push_str(" />");
    } else {
        doc.push('>');
        for (name, value) in parameters {
            let len = name.chars().count() + value.chars().count();
            if len >= MAX_PARAMETER_CHARS {
                return Err(TwimlError::ParameterTooLong {
                    name: name.clone(),
                    len,
                });
            }
            doc.push_str("<Parameter name=\"");
            doc.push_str(&escape_attr(name));
            doc.push_str("\" value=\"");
            doc.push_str(&escape_attr(value));
            doc.push_str("\" />");
        }
        doc.push_str("</Stream>");
    }
    doc.push_str("</Connect></Response>");
    let len = doc.chars().count();
    if len >= MAX_DOCUMENT_CHARS {
        return Err(TwimlError::DocumentTooLong { len });
    }
    Ok(doc)
}

/// The keys Twilio's `<Play digits>` can press: `0-9`, `A-D`, `*`, `#`
/// (the `<Play>` reference and warning 13430, docs/protocol/twilio.md 5.9).
pub const PLAYABLE_KEYS: &str = "0123456789ABCD*#";

/// A pause `<Play digits>` understands: `w` waits half a second, `W` a second.
fn is_pause(c: char) -> bool {
    matches!(c, 'w' | 'W')
}

/// The pause Twilio plays before the first key ([`PlayDigits::press`]): half
/// a second, so the first tone is not the first audio after Twilio switches
/// the call from the stream to `<Play>` (whether that switch clips the start
/// of a tone is for the first live call to tell, twilio.md 5.9).
pub const LEAD_PAUSE: &str = "w";

/// A value of `<Play digits>`: keys and pauses, exactly the characters Twilio
/// accepts (`0-9 A-D * #`, `w`, `W`), with at least one key. Built only by
/// [`PlayDigits::parse`] or [`PlayDigits::press`], so a document we send never
/// carries digits Twilio would skip with warning 13430.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayDigits(String);

/// Keys that `<Play digits>` cannot press; the caller plays them another way
/// (as in-band tones) or refuses them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayDigitsError {
    /// Characters Twilio does not accept in `digits`, each once, in the
    /// order they first appear.
    #[error("Twilio's <Play digits> cannot press {}", quoted(.unplayable))]
    Unplayable {
        /// The characters it cannot play.
        unplayable: Vec<char>,
    },
    /// Only pauses, or nothing at all: there is no key to press.
    #[error("there is no key to press")]
    NoKeys,
}

/// `'*', '#'` for an error message.
fn quoted(chars: &[char]) -> String {
    chars
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PlayDigits {
    /// Take a `digits` value as Twilio reads it: keys and `w`/`W` pauses.
    /// Refuses any other character (listing every one, so the caller knows
    /// which keys need another way) and a value with no key.
    pub fn parse(digits: &str) -> Result<Self, PlayDigitsError> {
        let mut unplayable: Vec<char> = Vec::new();
        for c in digits.chars() {
            if !PLAYABLE_KEYS.contains(c) && !is_pause(c) && !unplayable.contains(&c) {
                unplayable.push(c);
            }
        }
        if !unplayable.is_empty() {
            return Err(PlayDigitsError::Unplayable { unplayable });
        }
        if !digits.chars().any(|c| PLAYABLE_KEYS.contains(c)) {
            return Err(PlayDigitsError::NoKeys);
        }
        Ok(PlayDigits(digits.to_owned()))
    }

    /// The agent's keys as Twilio should play them: [`LEAD_PAUSE`], then the
    /// keys in order (Twilio spaces consecutive keys itself).
    pub fn press(keys: &str) -> Result<Self, PlayDigitsError> {
        Self::parse(&format!("{LEAD_PAUSE}{keys}"))
    }

    /// The attribute value, e.g. `w2`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The keys alone, pauses left out (what the transcript shows).
    pub fn keys(&self) -> String {
        self.0.chars().filter(|c| !is_pause(*c)).collect()
    }
}

impl std::fmt::Display for PlayDigits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<Response><Say>text</Say><Hangup /></Response>` (text escaped): replaces
/// the running TwiML to end a call politely, e.g. when our side fails.
///
/// Written exactly as twilio-python does (no XML declaration, `<Hangup />`
/// with a space), so `say_and_hangup("Sorry, we have a technical problem.
/// Goodbye.")` is the `Twiml` of `http/rest_redirect_twiml_request.json`.
pub fn say_and_hangup(text: &str) -> String {
    format!(
        "<Response><Say>{}</Say><Hangup /></Response>",
        escape_text(text)
    )
}

/// The `language` and `voice` attributes of a `<Say>`: which locale Twilio's
/// text-to-speech speaks, and a voice that speaks it (Twilio may refuse a
/// `<Say>` whose voice does not speak its language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SayVoice {
    /// Twilio's `language` value, e.g. `fr-FR` (docs/protocol/twilio.md, `<Say>`).
    pub language: &'static str,
    /// Twilio's `voice` value, e.g. `Google.fr-FR-Standard-A`.
    pub voice: &'static str,
}

/// The `<Say>` voice for a call held in `language`. Google's standard
/// voices are used because their name carries the locale they speak (so a
/// mismatch cannot slip in) and every shipped language has one. A region
/// without its own voice takes the nearest one: Spanish outside Spain takes
/// US Spanish (a Latin American accent), French outside Canada France's,
/// German everywhere Germany's, Portuguese outside Portugal, Angola and
/// Mozambique Brazil's, English in Ireland Britain's, in New Zealand Australia's.
pub fn say_voice(language: &Language) -> SayVoice {
    let v = |language, voice| SayVoice { language, voice };
    match (language.base(), language.region()) {
        (BaseLanguage::English, Some("GB" | "IE")) => v("en-GB", "Google.en-GB-Standard-A"),
        (BaseLanguage::English, Some("AU" | "NZ")) => v("en-AU", "Google.en-AU-Standard-A"),
        (BaseLanguage::English, Some("IN")) => v("en-IN", "Google.en-IN-Standard-A"),
        (BaseLanguage::English, _) => v("en-US", "Google.en-US-Standard-A"),
        (BaseLanguage::French, Some("CA")) => v("fr-CA", "Google.fr-CA-Standard-A"),
        (BaseLanguage::French, _) => v("fr-FR", "Google.fr-FR-Standard-A"),
        (BaseLanguage::Spanish, None | Some("ES")) => v("es-ES", "Google.es-ES-Standard-A"),
        (BaseLanguage::Spanish, _) => v("es-US", "Google.es-US-Standard-A"),
        (BaseLanguage::German, _) => v("de-DE", "Google.de-DE-Standard-A"),
        (BaseLanguage::Italian, _) => v("it-IT", "Google.it-IT-Standard-A"),
        (BaseLanguage::Portuguese, Some("PT" | "AO" | "MZ")) => {
            v("pt-PT", "Google.pt-PT-Standard-A")
        }
        (BaseLanguage::Portuguese, _) => v("pt-BR", "Google.pt-BR-Standard-A"),
        (BaseLanguage::Japanese, _) => v("ja-JP", "Google.ja-JP-Standard-A"),
    }
}

/// `<Response><Say language=".." voice="..">text</Say><Hangup /></Response>`:
/// [`say_and_hangup`] in another language than Twilio's default English.
/// Attributes are in twilio-python's order (sorted by name).
pub fn say_in_language_and_hangup(text: &str, voice: SayVoice) -> String {
    format!(
        "<Response><Say language=\"{}\" voice=\"{}\">{}</Say><Hangup /></Response>",
        escape_attr(voice.language),
        escape_attr(voice.voice),
        escape_text(text)
    )
}

/// The polite `<Say>` + `<Hangup>` of a call held in `language`: English
/// as the server has always written it ([`say_and_hangup`], Twilio's default
/// English voice), any other language with Twilio's `language` attribute and
/// a voice that speaks it ([`say_in_language_and_hangup`], [`say_voice`]).
pub fn say_and_hangup_in(text: &str, language: &Language) -> String {
    match language.base() {
        BaseLanguage::English => say_and_hangup(text),
        _ => say_in_language_and_hangup(text, say_voice(language)),
    }
}

/// What a TwiML document asks Twilio to do, as far as reservoice uses it:
/// the simulator plays Twilio with it, and tests check builders round-trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTwiml {
    /// `url` of the first `<Stream>`.
    pub stream_url: Option<String>,
    /// `statusCallback` of the first `<Stream>`.
    pub stream_status_callback: Option<String>,
    /// `<Parameter>` children of the first `<Stream>`, in document order,
    /// unescaped.
    pub parameters: Vec<(String, String)>,
    /// Text of each `<Say>`, in document order, unescaped.
    pub says: Vec<String>,
    /// Whether the document contains `<Hangup>`.
    pub hangup: bool,
    /// The `digits` of each `<Play>` that has them, in document order.
    pub play_digits: Vec<String>,
}

/// Reads the attribute `name` of `element`, unescaped (entities and numeric
/// character references).
fn attribute(element: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, TwimlError> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| TwimlError::Parse(e.to_string()))?;
        if attr.key.as_ref() == name {
            let value = attr
                .unescape_value()
                .map_err(|e| TwimlError::Parse(e.to_string()))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// Parse a TwiML document produced by Twilio-compatible code (used by the
/// simulator and tests): returns the first `<Stream>`'s url, statusCallback
/// and its `<Parameter>`s in order, the `<Say>` texts, the `<Play digits>`,
/// and whether it hangs up. Entities and numeric character references are unescaped. Refuses
/// malformed XML and documents whose root is not `<Response>`; elements
/// reservoice does not use are ignored.
pub fn parse(doc: &str) -> Result<ParsedTwiml, TwimlError> {
    let mut reader = Reader::from_str(doc);
    let mut parsed = ParsedTwiml::default();
    // Names of the open elements, outermost first.
    let mut open: Vec<Vec<u8>> = Vec::new();
    let mut seen_root = false;
    // Set while inside the first <Stream>: its <Parameter>s are collected.
    let mut in_first_stream = false;
    let mut seen_stream = false;
    // Text of the <Say> being read.
    let mut say: Option<String> = None;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| TwimlError::Parse(format!("at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.name().as_ref().to_vec();
                if open.is_empty() {
                    if seen_root {
                        return Err(TwimlError::Parse("more than one root element".into()));
                    }
                    if name != b"Response" {
                        return Err(TwimlError::Parse(format!(
                            "root element is <{}>, expected <Response>",
                            String::from_utf8_lossy(&name)
                        )));
                    }
                    seen_root = true;
                }
                match name.as_slice() {
                    b"Stream" if !seen_stream => {
                        seen_stream = true;
                        parsed.stream_url = attribute(e, b"url")?;
                        parsed.stream_status_callback = attribute(e, b"statusCallback")?;
                        in_first_stream = !is_empty;
                    }
                    b"Parameter" if in_first_stream => {
                        let name = attribute(e, b"name")?.ok_or_else(|| {
                            TwimlError::Parse("<Parameter> without a name".into())
                        })?;
                        let value = attribute(e, b"value")?.unwrap_or_default();
                        parsed.parameters.push((name, value));
                    }
                    b"Say" => {
                        if is_empty {
                            parsed.says.push(String::new());
                        } else {
                            say = Some(String::new());
                        }
                    }
                    b"Hangup" => parsed.hangup = true,
                    b"Play" => {
                        if let Some(digits) = attribute(e, b"digits")? {
                            parsed.play_digits.push(digits);
                        }
                    }
                    _ => {}
                }
                if !is_empty {
                    open.push(name);
                }
            }
            Event::End(e) => {
                // quick-xml has already checked that the name matches.
                match e.name().as_ref() {
                    b"Stream" => in_first_stream = false,
                    b"Say" => {
                        if let Some(text) = say.take() {
                            parsed.says.push(text);
                        }
                    }
                    _ => {}
                }
                open.pop();
            }
            Event::Text(t) => {
                if let Some(text) = say.as_mut() {
                    let unescaped = t.unescape().map_err(|e| TwimlError::Parse(e.to_string()))?;
                    text.push_str(&unescaped);
                } else if open.is_empty() && !t.iter().all(|b| b.is_ascii_whitespace()) {
                    return Err(TwimlError::Parse("text outside the root element".into()));
                }
            }
            Event::CData(c) => {
                if let Some(text) = say.as_mut() {
                    text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(name) = open.last() {
        return Err(TwimlError::Parse(format!(
            "<{}> is not closed",
            String::from_utf8_lossy(name)
        )));
    }
    if !seen_root {
        return Err(TwimlError::Parse("no <Response> element".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).expect("fixture readable")
    }

    /// The eight parameters of `twilio_start.json`, in file order (serde_json
    /// without `preserve_order` would sort them, so read the raw text order).
    fn start_parameters() -> Vec<(String, String)> {
        let text = fixture("twilio_start.json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        let map = json["start"]["customParameters"]
            .as_object()
            .expect("customParameters object");
        let mut params: Vec<(usize, String, String)> = map
            .iter()
            .map(|(k, v)| {
                let pos = text.find(&format!("\"{k}\":")).expect("key in text");
                (pos, k.clone(), v.as_str().expect("string value").to_owned())
            })
            .collect();
        params.sort();
        params.into_iter().map(|(_, k, v)| (k, v)).collect()
    }

    #[test]
    fn connect_stream_matches_twilio_python_fixture() {
        let params = start_parameters();
        assert_eq!(params.len(), 8);
        assert_eq!(params[0].0, "restaurant_name");
        assert_eq!(params[7].0, "call_token");
        let doc = connect_stream(
            "wss://reservoice.example.com/media-stream",
            Some("https://reservoice.example.com/twilio/stream-status"),
            &params,
        )
        .expect("builds");
        let expected = fixture("twiml_expected.xml");
        assert_eq!(doc, expected.trim_end_matches('\n'));
        assert_eq!(doc.chars().count(), 712);
    }

    #[test]
    fn connect_stream_matches_create_call_fixture_twiml() {
        let request: serde_json::Value =
            serde_json::from_str(&fixture("http/rest_create_call_request.json")).expect("json");
        let twiml = request["form"]
            .as_array()
            .expect("form")
            .iter()
            .find(|pair| pair[0] == "Twiml")
            .expect("Twiml pair")[1]
            .as_str()
            .expect("string")
            .to_owned();
        let doc = connect_stream(
            "wss://reservoice.example.com/media-stream",
            None,
            &[("call_token".into(), "k7Qx2mPz9LwR4tVb".into())],
        )
        .expect("builds");
        assert_eq!(doc, twiml);
    }

    #[test]
    fn connect_stream_without_parameters_is_self_closing() {
        let doc = connect_stream("wss://x.example/s", None, &[]).expect("builds");
        assert!(doc.ends_with(r#"<Stream url="wss://x.example/s" /></Connect></Response>"#));
        let parsed = parse(&doc).expect("parses");
        assert_eq!(parsed.stream_url.as_deref(), Some("wss://x.example/s"));
        assert!(parsed.parameters.is_empty());
    }

    #[test]
    fn escape_attr_escapes_markup_and_whitespace_controls() {
        assert!(matches!(escape_attr("plain café 'x'"), Cow::Borrowed(_)));
        assert_eq!(
            escape_attr("Bob & Sue's \"Grill\" <Downtown>"),
            "Bob &amp; Sue's &quot;Grill&quot; &lt;Downtown&gt;"
        );
        assert_eq!(
            escape_attr("line1\nline2\ttab\r"),
            "line1&#10;line2&#09;tab&#13;"
        );
        assert_eq!(escape_attr("a\u{1}b"), "a\u{FFFD}b");
    }

    #[test]
    fn build_then_parse_round_trips_parameters() {
        let params: Vec<(String, String)> = vec![
            (
                "restaurant_name".into(),
                "Bob & Sue's \"Grill\" <Downtown>".into(),
            ),
            ("notes".into(), "line1\nline2\ttab\r\nend".into()),
            ("city".into(), "café".into()),
            ("empty".into(), String::new()),
            ("spaces".into(), "  leading and trailing  ".into()),
        ];
        let doc = connect_stream(
            "wss://reservoice.example.com/media-stream",
            Some("https://reservoice.example.com/twilio/stream-status?a=1&b=2"),
            &params,
        )
        .expect("builds");
        let parsed = parse(&doc).expect("parses");
        assert_eq!(
            parsed.stream_url.as_deref(),
            Some("wss://reservoice.example.com/media-stream")
        );
        assert_eq!(
            parsed.stream_status_callback.as_deref(),
            Some("https://reservoice.example.com/twilio/stream-status?a=1&b=2")
        );
        assert_eq!(parsed.parameters, params);
        assert!(parsed.says.is_empty());
        assert!(!parsed.hangup);
    }

    #[test]
    fn parse_reads_fixture_and_pretty_printed_documents() {
        let parsed = parse(&fixture("twiml_expected.xml")).expect("parses");
        assert_eq!(parsed.parameters, start_parameters());
        assert_eq!(
            parsed.stream_status_callback.as_deref(),
            Some("https://reservoice.example.com/twilio/stream-status")
        );

        let pretty = "<?xml version=\"1.0\"?>\n<Response>\n  <Connect>\n    <Stream url=\"wss://h/s\">\n      <Parameter name=\"n\" value=\"a&#x9;b&#10;c&amp;d\"/>\n    </Stream>\n  </Connect>\n  <Say>Hi &amp; bye</Say>\n  <Hangup/>\n</Response>\n";
        let parsed = parse(pretty).expect("parses");
        assert_eq!(parsed.stream_url.as_deref(), Some("wss://h/s"));
        assert_eq!(parsed.stream_status_callback, None);
        assert_eq!(parsed.parameters, vec![("n".into(), "a\tb\nc&d".into())]);
        assert_eq!(parsed.says, vec!["Hi & bye".to_string()]);
        assert!(parsed.hangup);
    }

    #[test]
    fn parse_refuses_malformed_documents() {
        for bad in [
            "",
            "<Response><Say>x</Response>",
            "<Response><Say>x</Say>",
            "<Other/>",
            "<Response/><Response/>",
            "<Response><Say>&unknown;</Say></Response>",
        ] {
            assert!(
                matches!(parse(bad), Err(TwimlError::Parse(_))),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn too_long_parameter_is_refused() {
        let ok = vec![("n".to_string(), "v".repeat(498))];
        assert!(connect_stream("wss://h/s", None, &ok).is_ok());
        let too_long = vec![("n".to_string(), "v".repeat(499))];
        match connect_stream("wss://h/s", None, &too_long) {
            Err(TwimlError::ParameterTooLong { name, len }) => {
                assert_eq!(name, "n");
                assert_eq!(len, 500);
            }
            other => panic!("expected ParameterTooLong, got {other:?}"),
        }
        // Characters, not bytes: 499 'é' is 998 bytes but still allowed.
        let multibyte = vec![("n".to_string(), "é".repeat(498))];
        assert!(connect_stream("wss://h/s", None, &multibyte).is_ok());
    }

    #[test]
    fn too_long_document_is_refused() {
        let params: Vec<(String, String)> = (0..10)
            .map(|i| (format!("p{i}"), "x".repeat(450)))
            .collect();
        match connect_stream("wss://h/s", None, &params) {
            Err(TwimlError::DocumentTooLong { len }) => assert!(len >= MAX_DOCUMENT_CHARS),
            other => panic!("expected DocumentTooLong, got {other:?}"),
        }
    }

    /// The continuation of the key-press fixture (stream 2 of the call).
    fn fixture_continuation() -> crate::domain::StreamContinuation {
        use chrono::TimeZone;
        crate::domain::StreamContinuation {
            stream_number: 2,
            call_clock_ms: 48_260,
            updated_at: chrono::Utc
                .timestamp_millis_opt(1_795_000_000_123)
                .single()
                .expect("instant"),
        }
    }

    #[test]
    fn key_press_twiml_matches_twilio_python_fixture() {
        let received: std::collections::HashMap<String, String> =
            start_parameters().into_iter().collect();
        let parameters = fixture_continuation().next_stream_parameters(&received);
        let digits = PlayDigits::press("2").expect("playable");
        assert_eq!(digits.as_str(), "w2");
        let doc = play_digits_then_connect_stream(
            &digits,
            "wss://reservoice.example.com/media-stream",
            Some("https://reservoice.example.com/twilio/stream-status"),
            &parameters,
        )
        .expect("builds");
        let expected = fixture("twiml_play_digits_reconnect.xml");
        assert_eq!(doc, expected.trim_end_matches('\n'));
        // And it is exactly the Twiml of the REST update fixture.
        let request: serde_json::Value =
            serde_json::from_str(&fixture("http/rest_update_play_digits_request.json"))
                .expect("json");
        assert_eq!(request["form"][0][0], "Twiml");
        assert_eq!(request["form"][0][1].as_str(), Some(doc.as_str()));

        let parsed = parse(&doc).expect("parses");
        assert_eq!(parsed.play_digits, vec!["w2".to_string()]);
        assert_eq!(parsed.parameters, parameters);
        assert_eq!(
            parsed.stream_url.as_deref(),
            Some("wss://reservoice.example.com/media-stream")
        );
        assert!(parsed.says.is_empty() && !parsed.hangup);
    }

    #[test]
    fn key_press_twiml_keeps_twilio_limits() {
        let digits = PlayDigits::press("1").expect("playable");
        let too_long = vec![("n".to_string(), "v".repeat(499))];
        assert!(matches!(
            play_digits_then_connect_stream(&digits, "wss://h/s", None, &too_long),
            Err(TwimlError::ParameterTooLong { .. })
        ));
        let many: Vec<(String, String)> = (0..10)
            .map(|i| (format!("p{i}"), "x".repeat(450)))
            .collect();
        assert!(matches!(
            play_digits_then_connect_stream(&digits, "wss://h/s", None, &many),
            Err(TwimlError::DocumentTooLong { .. })
        ));
        let bare =
            play_digits_then_connect_stream(&digits, "wss://h/s", None, &[]).expect("builds");
        assert!(bare.ends_with(
            r#"<Response><Play digits="w1" /><Connect><Stream url="wss://h/s" /></Connect></Response>"#
        ));
    }

    #[test]
    fn play_digits_accepts_exactly_what_twilio_plays() {
        // Every key of the keypad, and both pauses.
        for ok in ["0123456789", "ABCD", "*", "#", "w1W2ww#", "1", "WW*"] {
            let d = PlayDigits::parse(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
            assert_eq!(d.as_str(), ok);
            assert_eq!(d.to_string(), ok);
        }
        assert_eq!(PlayDigits::parse("w1W2ww#").expect("ok").keys(), "12#");
        // What Twilio would skip (warning 13430) is refused, every character
        // named once, in order of appearance.
        assert_eq!(
            PlayDigits::parse("1a,2a x"),
            Err(PlayDigitsError::Unplayable {
                unplayable: vec!['a', ',', ' ', 'x']
            })
        );
        for lower in ["a", "b", "c", "d", "e", "p"] {
            assert!(
                matches!(
                    PlayDigits::parse(lower),
                    Err(PlayDigitsError::Unplayable { .. })
                ),
                "{lower}"
            );
        }
        // No key at all.
        assert_eq!(PlayDigits::parse(""), Err(PlayDigitsError::NoKeys));
        assert_eq!(PlayDigits::parse("wWw"), Err(PlayDigitsError::NoKeys));
        assert_eq!(PlayDigits::press(""), Err(PlayDigitsError::NoKeys));
        // press: the lead pause, then the keys.
        let pressed = PlayDigits::press("1234#").expect("playable");
        assert_eq!(pressed.as_str(), format!("{LEAD_PAUSE}1234#"));
        assert_eq!(pressed.keys(), "1234#");
        let err = PlayDigits::press("2é").unwrap_err();
        assert_eq!(err.to_string(), "Twilio's <Play digits> cannot press 'é'");
    }

    #[test]
    fn say_and_hangup_escapes_and_matches_redirect_fixture() {
        let request: serde_json::Value =
            serde_json::from_str(&fixture("http/rest_redirect_twiml_request.json")).expect("json");
        assert_eq!(
            say_and_hangup("Sorry, we have a technical problem. Goodbye."),
            request["form"][0][1].as_str().expect("twiml")
        );
        let doc = say_and_hangup("Fish & chips <today> \"now\"");
        assert_eq!(
            doc,
            "<Response><Say>Fish &amp; chips &lt;today&gt; \"now\"</Say><Hangup /></Response>"
        );
        let parsed = parse(&doc).expect("parses");
        assert_eq!(
            parsed.says,
            vec!["Fish & chips <today> \"now\"".to_string()]
        );
        assert!(parsed.hangup);
        assert_eq!(parsed.stream_url, None);
    }

    /// Every `language` value of `<Say>` reservoice may send, and every
    /// voice, as listed in Twilio's own TwiML types (twilio-node,
    /// `src/twiml/VoiceResponse.ts`, `SayLanguage` and `SayVoice`; see
    /// docs/protocol/twilio.md, `<Say>`): the subset we use.
    const TWILIO_SAY_LANGUAGES: &[&str] = &[
        "de-DE", "en-AU", "en-GB", "en-IN", "en-US", "es-ES", "es-US", "fr-CA", "fr-FR", "it-IT",
        "ja-JP", "pt-BR", "pt-PT",
    ];
    const TWILIO_SAY_VOICES: &[&str] = &[
        "Google.de-DE-Standard-A",
        "Google.en-AU-Standard-A",
        "Google.en-GB-Standard-A",
        "Google.en-IN-Standard-A",
        "Google.en-US-Standard-A",
        "Google.es-ES-Standard-A",
        "Google.es-US-Standard-A",
        "Google.fr-CA-Standard-A",
        "Google.fr-FR-Standard-A",
        "Google.it-IT-Standard-A",
        "Google.ja-JP-Standard-A",
        "Google.pt-BR-Standard-A",
        "Google.pt-PT-Standard-A",
    ];

    /// The `language` and `voice` attributes of the first `<Say>` of `doc`.
    fn say_attributes(doc: &str) -> (Option<String>, Option<String>) {
        let mut reader = Reader::from_str(doc);
        loop {
            match reader.read_event().expect("well-formed") {
                Event::Start(e) if e.name().as_ref() == b"Say" => {
                    return (
                        attribute(&e, b"language").expect("attr"),
                        attribute(&e, b"voice").expect("attr"),
                    );
                }
                Event::Eof => return (None, None),
                _ => {}
            }
        }
    }

    #[test]
    fn the_model_down_apology_in_french_carries_a_valid_twilio_language() {
        let french = Language::parse("fr").expect("fr");
        let phrases = crate::phrases::Phrases::new(french);
        let doc = say_in_language_and_hangup(phrases.apology_technical(), say_voice(&french));
        assert_eq!(
            doc,
            "<Response><Say language=\"fr-FR\" voice=\"Google.fr-FR-Standard-A\">Désolé, nous rencontrons un problème technique et nous vous rappellerons plus tard. Au revoir.</Say><Hangup /></Response>"
        );
        let (language, voice) = say_attributes(&doc);
        let (language, voice) = (language.expect("language"), voice.expect("voice"));
        assert!(
            TWILIO_SAY_LANGUAGES.contains(&language.as_str()),
            "{language}"
        );
        assert!(TWILIO_SAY_VOICES.contains(&voice.as_str()), "{voice}");
        let parsed = parse(&doc).expect("parses");
        assert_eq!(parsed.says, vec![phrases.apology_technical().to_string()]);
        assert!(parsed.hangup);
    }

    #[test]
    fn every_language_and_region_gets_a_twilio_voice_that_speaks_it() {
        for tag in [
            "en", "en-US", "en-GB", "en-IE", "en-AU", "en-NZ", "en-IN", "en-CA", "fr", "fr-FR",
            "fr-BE", "fr-CH", "fr-CA", "es", "es-ES", "es-MX", "es-AR", "es-419", "de", "de-AT",
            "de-CH", "it", "it-CH", "pt", "pt-BR", "pt-PT", "pt-AO", "ja", "ja-JP",
        ] {
            let language = Language::parse(tag).expect("tag");
            let say = say_voice(&language);
            assert!(
                TWILIO_SAY_LANGUAGES.contains(&say.language),
                "{tag}: {say:?}"
            );
            assert!(TWILIO_SAY_VOICES.contains(&say.voice), "{tag}: {say:?}");
            assert!(
                say.voice.starts_with(&format!("Google.{}-", say.language)),
                "{tag}: the voice must speak the language: {say:?}"
            );
            assert!(
                say.language.starts_with(language.base().code()),
                "{tag}: {say:?}"
            );
        }
        let mexico = say_voice(&Language::parse("es-MX").expect("es-MX"));
        assert_eq!(mexico.language, "es-US");
        let quebec = say_voice(&Language::parse("fr-CA").expect("fr-CA"));
        assert_eq!(quebec.voice, "Google.fr-CA-Standard-A");
    }

    #[test]
    fn a_calls_goodbye_is_said_in_its_language() {
        let en = Language::ENGLISH;
        let english = crate::phrases::Phrases::new(en);
        assert_eq!(
            say_and_hangup_in(english.apology_limit(), &en),
            say_and_hangup(english.apology_limit())
        );
        for tag in ["fr-FR", "es-MX", "de", "it", "pt-BR", "ja"] {
            let language = Language::parse(tag).expect("tag");
            let phrases = crate::phrases::Phrases::new(language);
            for text in [phrases.apology_limit(), phrases.apology_shutdown()] {
                let doc = say_and_hangup_in(text, &language);
                let (lang, voice) = say_attributes(&doc);
                assert_eq!(
                    lang.as_deref(),
                    Some(say_voice(&language).language),
                    "{tag}"
                );
                assert_eq!(voice.as_deref(), Some(say_voice(&language).voice), "{tag}");
                assert_eq!(parse(&doc).expect("parses").says, vec![text.to_string()]);
            }
        }
    }

    #[test]
    fn say_in_language_escapes_its_text() {
        let voice = say_voice(&Language::parse("de").expect("de"));
        let doc = say_in_language_and_hangup("Fisch & <Chips>", voice);
        assert!(doc.contains(">Fisch &amp; &lt;Chips&gt;</Say>"), "{doc}");
        assert_eq!(
            parse(&doc).expect("parses").says,
            vec!["Fisch & <Chips>".to_string()]
        );
    }
}
