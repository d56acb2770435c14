//! The language a call is held in: what the restaurant hears, not what the
//! person reads (the CLI, the outcome and the API stay English).
//!
//! A [`Language`] is parsed once from a BCP 47 tag (`fr`, `es-MX`, `pt-BR`)
//! with ICU4X's `icu_locale_core`, and is then known to be one the product
//! ships: its phrases, its way of saying dates and times, a Twilio `<Say>`
//! voice and a transcription hint all exist for it. Without a tag, the call's
//! language comes from the restaurant's number ([`Language::for_number`]):
//! the country's main language, from the table [`COUNTRY_DEFAULTS`].

use std::fmt;

use icu_locale_core::subtags::{region, Region};
use icu_locale_core::LanguageIdentifier;
use serde::{Deserialize, Serialize};

use super::phone::PhoneNumber;

/// A language the product ships, whatever the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseLanguage {
    /// `en`
    English,
    /// `fr`
    French,
    /// `es`
    Spanish,
    /// `de`
    German,
    /// `it`
    Italian,
    /// `pt`
    Portuguese,
    /// `ja`
    Japanese,
}

impl BaseLanguage {
    /// Every shipped language, in the order error messages and docs list them.
    pub const ALL: [BaseLanguage; 7] = [
        BaseLanguage::English,
        BaseLanguage::French,
        BaseLanguage::Spanish,
        BaseLanguage::German,
        BaseLanguage::Italian,
        BaseLanguage::Portuguese,
        BaseLanguage::Japanese,
    ];

    /// The ISO 639-1 code (`fr`): the language subtag of BCP 47, and the
    /// value OpenAI's transcription takes as its language hint.
    pub const fn code(self) -> &'static str {
        match self {
            BaseLanguage::English => "en",
            BaseLanguage::French => "fr",
            BaseLanguage::Spanish => "es",
            BaseLanguage::German => "de",
            BaseLanguage::Italian => "it",
            BaseLanguage::Portuguese => "pt",
            BaseLanguage::Japanese => "ja",
        }
    }

    /// The language's English name ("French"): the brief is written in
    /// English, and so are the messages the person reads.
    pub const fn english_name(self) -> &'static str {
        match self {
            BaseLanguage::English => "English",
            BaseLanguage::French => "French",
            BaseLanguage::Spanish => "Spanish",
            BaseLanguage::German => "German",
            BaseLanguage::Italian => "Italian",
            BaseLanguage::Portuguese => "Portuguese",
            BaseLanguage::Japanese => "Japanese",
        }
    }

    fn from_code(code: &str) -> Option<BaseLanguage> {
        BaseLanguage::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// The language of one call: a shipped language and, when known, the region
/// it is spoken in (`es-MX` is Spanish as spoken in Mexico). The region picks
/// the Twilio voice's accent; the words are the language's.
///
/// Serialised as its tag (`"fr-FR"`), so it travels as a JSON field or a
/// TwiML `<Parameter>` and comes back through [`Language::parse`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language {
    base: BaseLanguage,
    region: Option<Region>,
}

/// Why a tag is not a language the call can be held in. The message lists
/// what is supported, so a person can pick one (exit code 2, HTTP 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanguageError {
    /// Not a BCP 47 tag at all.
    #[error("'{0}' is not a language tag like fr, es-MX or pt-BR; supported: {list}", list = supported_list())]
    NotATag(String),
    /// A well-formed tag for a language the product does not ship.
    #[error("'{0}' is not a supported language; supported: {list}", list = supported_list())]
    Unsupported(String),
}

/// "en (English), fr (French), …": the supported languages, for messages and docs.
pub fn supported_list() -> String {
    BaseLanguage::ALL
        .iter()
        .map(|l| format!("{} ({})", l.code(), l.english_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Language {
    /// The language a call falls back to when nothing else decides:
    /// English, no region.
    pub const ENGLISH: Language = Language::new(BaseLanguage::English);

    /// A language without a region (`fr`).
    pub const fn new(base: BaseLanguage) -> Language {
        Language { base, region: None }
    }

    /// A language as spoken in one region (`fr-BE`).
    pub const fn regional(base: BaseLanguage, region: Region) -> Language {
        Language {
            base,
            region: Some(region),
        }
    }

    /// Parse a BCP 47 tag a person typed (`fr`, `es-MX`, `PT-br`; `pt_BR`
    /// is accepted too). Script and variant subtags are accepted and
    /// ignored; the language must be one of [`BaseLanguage::ALL`].
    pub fn parse(tag: &str) -> Result<Language, LanguageError> {
        let trimmed = tag.trim();
        let id = LanguageIdentifier::try_from_str(&trimmed.replace('_', "-"))
            .map_err(|_| LanguageError::NotATag(trimmed.to_string()))?;
        let base = BaseLanguage::from_code(id.language.as_str())
            .ok_or_else(|| LanguageError::Unsupported(trimmed.to_string()))?;
        Ok(Language {
            base,
            region: id.region,
        })
    }

    /// The call's language when nobody chose one: the main language of the
    /// country the number belongs to ([`COUNTRY_DEFAULTS`]), or English for
    /// a country whose languages the product does not ship yet.
    ///
    /// The country is libphonenumber's: the region whose number plan matches
    /// (+1 514 is Canada, +1 212 the United States). A number no plan
    /// matches goes to the calling code's main country, as libphonenumber
    /// lists it first (+39 → Italy rather than the Vatican, +1 → the US).
    pub fn for_number(number: &PhoneNumber) -> Language {
        let Ok(parsed) = phonenumber::parse(None, number.as_str()) else {
            return Language::ENGLISH;
        };
        let country = match parsed.country().id() {
            Some(id) => Some(id.as_ref().to_string()),
            None => phonenumber::metadata::DATABASE
                .region(&parsed.country().code())
                .and_then(|regions| regions.first().map(|r| r.to_string())),
        };
        country
            .and_then(|c| Language::for_country(&c))
            .unwrap_or(Language::ENGLISH)
    }

    /// The language of a call to `number`: `requested` (a tag the person
    /// gave with `--language`, `RESERVOICE_LANGUAGE` or the API's `language`
    /// field) when there is one, else the number's default
    /// ([`Language::for_number`]). A blank request counts as none.
    pub fn for_call(
        requested: Option<&str>,
        number: &PhoneNumber,
    ) -> Result<Language, LanguageError> {
        match requested.map(str::trim).filter(|t| !t.is_empty()) {
            Some(tag) => Language::parse(tag),
            None => Ok(Language::for_number(number)),
        }
    }

    /// The default language of a country (ISO 3166-1 alpha-2, `FR`), if the
    /// product ships one of its common languages.
    pub fn for_country(country: &str) -> Option<Language> {
        COUNTRY_DEFAULTS
            .iter()
            .find(|d| d.country.eq_ignore_ascii_case(country))
            .map(|d| d.language)
    }

    /// Which shipped language this is.
    pub fn base(&self) -> BaseLanguage {
        self.base
    }

    /// The region subtag (`MX`), if the tag had one.
    pub fn region(&self) -> Option<&str> {
        self.region.as_ref().map(Region::as_str)
    }

    /// The ISO 639-1 code to give OpenAI's transcription of the restaurant's
    /// side as a hint (`audio.input.transcription.language`).
    pub fn transcription_code(&self) -> &'static str {
        self.base.code()
    }

    /// The English name ("French"), for the brief and the person's messages.
    pub fn english_name(&self) -> &'static str {
        self.base.english_name()
    }
}

impl fmt::Display for Language {
    /// The canonical tag: `fr`, `es-MX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.code())?;
        if let Some(region) = &self.region {
            write!(f, "-{}", region.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({self})")
    }
}

impl Default for Language {
    fn default() -> Self {
        Language::ENGLISH
    }
}

impl std::str::FromStr for Language {
    type Err = LanguageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Language::parse(s)
    }
}

impl TryFrom<String> for Language {
    type Error = LanguageError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Language::parse(&value)
    }
}

impl From<Language> for String {
    fn from(language: Language) -> String {
        language.to_string()
    }
}

/// One row of the table of defaults: a country, the language its calls are
/// held in unless `--language` says otherwise, and the other languages
/// commonly spoken there (documentation: where they are many, the person
/// should choose with `--language`).
#[derive(Debug, Clone, Copy)]
pub struct CountryDefault {
    /// ISO 3166-1 alpha-2 code.
    pub country: &'static str,
    /// The country's English name, for the docs.
    pub name: &'static str,
    /// The language calls to that country are held in.
    pub language: Language,
    /// Other common languages there ("" when the country has one).
    pub also_spoken: &'static str,
}

const fn row(
    country: &'static str,
    name: &'static str,
    base: BaseLanguage,
    region: Region,
    also_spoken: &'static str,
) -> CountryDefault {
    CountryDefault {
        country,
        name,
        language: Language::regional(base, region),
        also_spoken,
    }
}

use BaseLanguage::{English, French, German, Italian, Japanese, Portuguese, Spanish};

/// The default language per country. Where a country has several common
/// languages, the first one the product ships is the default, in the order
/// the `also_spoken` column continues: Canada → English (then French),
/// Switzerland → German (then French, Italian), Belgium → French (Dutch is
/// not shipped yet), India → English (Hindi and others are not shipped).
/// Countries not listed (and numbers whose country is unknown) get English.
#[rustfmt::skip]
pub const COUNTRY_DEFAULTS: &[CountryDefault] = &[
    row("US", "United States", English, region!("US"), "Spanish"),
    row("GB", "United Kingdom", English, region!("GB"), ""),
    row("IE", "Ireland", English, region!("IE"), "Irish"),
    row("AU", "Australia", English, region!("AU"), ""),
    row("NZ", "New Zealand", English, region!("NZ"), "Māori"),
    row("CA", "Canada", English, region!("CA"), "French"),
    row("IN", "India", English, region!("IN"), "Hindi and others (not shipped)"),
    row("SG", "Singapore", English, region!("SG"), "Malay, Mandarin, Tamil (not shipped)"),
    row("ZA", "South Africa", English, region!("ZA"), "Zulu, Xhosa, Afrikaans and others (not shipped)"),
    row("FR", "France", French, region!("FR"), ""),
    row("BE", "Belgium", French, region!("BE"), "Dutch (not shipped), German"),
    row("LU", "Luxembourg", French, region!("LU"), "Luxembourgish (not shipped), German"),
    row("MC", "Monaco", French, region!("MC"), ""),
    row("CH", "Switzerland", German, region!("CH"), "French, Italian"),
    row("DE", "Germany", German, region!("DE"), ""),
    row("AT", "Austria", German, region!("AT"), ""),
    row("LI", "Liechtenstein", German, region!("LI"), ""),
    row("ES", "Spain", Spanish, region!("ES"), "Catalan, Galician, Basque (not shipped)"),
    row("MX", "Mexico", Spanish, region!("MX"), ""),
    row("AR", "Argentina", Spanish, region!("AR"), ""),
    row("CO", "Colombia", Spanish, region!("CO"), ""),
    row("CL", "Chile", Spanish, region!("CL"), ""),
    row("PE", "Peru", Spanish, region!("PE"), "Quechua (not shipped)"),
    row("VE", "Venezuela", Spanish, region!("VE"), ""),
    row("EC", "Ecuador", Spanish, region!("EC"), ""),
    row("UY", "Uruguay", Spanish, region!("UY"), ""),
    row("PY", "Paraguay", Spanish, region!("PY"), "Guarani (not shipped)"),
    row("BO", "Bolivia", Spanish, region!("BO"), "Quechua, Aymara (not shipped)"),
    row("CR", "Costa Rica", Spanish, region!("CR"), ""),
    row("PA", "Panama", Spanish, region!("PA"), ""),
    row("DO", "Dominican Republic", Spanish, region!("DO"), ""),
    row("GT", "Guatemala", Spanish, region!("GT"), ""),
    row("HN", "Honduras", Spanish, region!("HN"), ""),
    row("SV", "El Salvador", Spanish, region!("SV"), ""),
    row("NI", "Nicaragua", Spanish, region!("NI"), ""),
    row("CU", "Cuba", Spanish, region!("CU"), ""),
    row("PR", "Puerto Rico", Spanish, region!("PR"), "English"),
    row("IT", "Italy", Italian, region!("IT"), ""),
    row("SM", "San Marino", Italian, region!("SM"), ""),
    row("VA", "Vatican City", Italian, region!("VA"), ""),
    row("PT", "Portugal", Portuguese, region!("PT"), ""),
    row("BR", "Brazil", Portuguese, region!("BR"), ""),
    row("AO", "Angola", Portuguese, region!("AO"), ""),
    row("MZ", "Mozambique", Portuguese, region!("MZ"), ""),
    row("JP", "Japan", Japanese, region!("JP"), ""),
];

/// [`COUNTRY_DEFAULTS`] as a Markdown table (country, calling code, the
/// default language, the others spoken there), for the README: generated
/// from the table so the docs cannot drift from the code.
pub fn defaults_markdown_table() -> String {
    let mut out = String::from(
        "| country | code | default language | also spoken (choose with `--language`) |\n| --- | --- | --- | --- |\n",
    );
    for d in COUNTRY_DEFAULTS {
        let code = phonenumber::metadata::DATABASE
            .by_id(d.country)
            .map(|m| format!("+{}", m.country_code()))
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {} (`{}`) | {} |\n",
            d.name,
            code,
            d.language.english_name(),
            d.language,
            d.also_spoken
        ));
    }
    out.push_str(&format!(
        "| any other country | | English (`en`) | |\n\nSupported languages: {}.\n",
        supported_list()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: &str) -> PhoneNumber {
        PhoneNumber::parse(n).expect("test number parses")
    }

    #[test]
    fn the_numbers_country_chooses_the_language() {
        for (n, want) in [
            ("+33 1 42 68 53 00", "fr-FR"),
            ("+33 6 12 34 56 78", "fr-FR"),
            ("+49 30 1234567", "de-DE"),
            ("+39 06 1234 5678", "it-IT"),
            ("+34 912 345 678", "es-ES"),
            ("+81 3-1234-5678", "ja-JP"),
            ("+1 212 555 0123", "en-US"),
            ("+1 415 555 0123", "en-US"),
            ("+44 20 7946 0018", "en-GB"),
            ("+351 21 123 4567", "pt-PT"),
            ("+55 11 2345 6789", "pt-BR"),
            ("+52 55 1234 5678", "es-MX"),
            ("+54 11 2345 6789", "es-AR"),
            ("+43 1 234 5678", "de-AT"),
            // Several common languages: the first shipped one in the table.
            ("+1 514 555 0123", "en-CA"),
            ("+41 44 123 45 67", "de-CH"),
            ("+41 22 123 45 67", "de-CH"),
            ("+32 2 123 45 67", "fr-BE"),
            ("+91 22 1234 5678", "en-IN"),
            // A country whose language is not shipped: English.
            ("+46 8 123 456 78", "en"),
            ("+7 495 123 45 67", "en"),
        ] {
            assert_eq!(Language::for_number(&number(n)).to_string(), want, "{n}");
        }
    }

    #[test]
    fn a_requested_language_overrides_the_numbers() {
        let paris = number("+33 1 42 68 53 00");
        assert_eq!(
            Language::for_call(None, &paris).unwrap().to_string(),
            "fr-FR"
        );
        assert_eq!(
            Language::for_call(Some("  "), &paris).unwrap().to_string(),
            "fr-FR"
        );
        assert_eq!(
            Language::for_call(Some("en"), &paris).unwrap(),
            Language::ENGLISH
        );
        assert_eq!(
            Language::for_call(Some("es-MX"), &number("+1 212 555 0123"))
                .unwrap()
                .to_string(),
            "es-MX"
        );
        // Switzerland and Canada: the table's first language unless asked.
        let geneva = number("+41 22 123 45 67");
        assert_eq!(
            Language::for_call(None, &geneva).unwrap().to_string(),
            "de-CH"
        );
        assert_eq!(
            Language::for_call(Some("fr-CH"), &geneva)
                .unwrap()
                .to_string(),
            "fr-CH"
        );
        assert_eq!(
            Language::for_call(Some("tlh"), &paris),
            Err(LanguageError::Unsupported("tlh".into()))
        );
    }

    #[test]
    fn the_defaults_table_for_the_docs_lists_every_row() {
        let table = defaults_markdown_table();
        assert!(
            table.contains("| France | +33 | French (`fr-FR`) |  |\n"),
            "{table}"
        );
        assert!(table.contains("| Switzerland | +41 | German (`de-CH`) | French, Italian |"));
        assert!(table.contains("| Canada | +1 | English (`en-CA`) | French |"));
        assert!(table.contains("| Japan | +81 | Japanese (`ja-JP`) |"));
        assert_eq!(table.lines().count(), COUNTRY_DEFAULTS.len() + 5);
        assert!(table.trim_end().ends_with("ja (Japanese)."));
    }

    #[test]
    fn tags_people_type_are_parsed_once() {
        for (tag, base, shown) in [
            ("fr", BaseLanguage::French, "fr"),
            ("FR", BaseLanguage::French, "fr"),
            ("es-MX", BaseLanguage::Spanish, "es-MX"),
            ("es-419", BaseLanguage::Spanish, "es-419"),
            ("pt_br", BaseLanguage::Portuguese, "pt-BR"),
            (" de ", BaseLanguage::German, "de"),
            ("en-GB", BaseLanguage::English, "en-GB"),
            ("it-IT", BaseLanguage::Italian, "it-IT"),
            ("ja-Jpan-JP", BaseLanguage::Japanese, "ja-JP"),
        ] {
            let l = Language::parse(tag).unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert_eq!(l.base(), base, "{tag}");
            assert_eq!(l.to_string(), shown, "{tag}");
            assert_eq!(Language::parse(&l.to_string()), Ok(l), "{tag} round trip");
        }
        assert_eq!(Language::parse("es-MX").unwrap().region(), Some("MX"));
        assert_eq!(Language::parse("fr").unwrap().region(), None);
    }

    #[test]
    fn a_bad_or_unsupported_tag_lists_the_supported_languages() {
        let list = "en (English), fr (French), es (Spanish), de (German), it (Italian), pt (Portuguese), ja (Japanese)";
        for bad in ["", "f", "french", "fr-", "12", "en-US-x-", "fr FR"] {
            let e = Language::parse(bad).unwrap_err();
            assert!(matches!(e, LanguageError::NotATag(_)), "{bad}: {e:?}");
            assert!(e.to_string().ends_with(list), "{e}");
        }
        for other in ["zh", "nl-BE", "sv", "und"] {
            let e = Language::parse(other).unwrap_err();
            assert_eq!(e, LanguageError::Unsupported(other.into()));
            assert_eq!(
                e.to_string(),
                format!("'{other}' is not a supported language; supported: {list}")
            );
        }
    }

    /// The README's table of defaults is the code's: regenerate it from the
    /// message below when the table changes.
    #[test]
    fn the_readme_shows_the_codes_table_of_defaults() {
        let readme = include_str!("../../README.md");
        let (start, end) = (
            "<!-- language-defaults:start -->\n",
            "<!-- language-defaults:end -->",
        );
        let shown = readme
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once(end))
            .map(|(table, _)| table)
            .expect("README.md has the language-defaults markers");
        let table = defaults_markdown_table();
        assert!(
            shown == table,
            "README.md's table of language defaults differs from the code's; put this between the markers:\n{table}"
        );
    }

    #[test]
    fn the_transcription_hint_is_iso_639_1() {
        for (tag, code) in [
            ("fr-CA", "fr"),
            ("es-MX", "es"),
            ("pt-BR", "pt"),
            ("ja", "ja"),
            ("en-GB", "en"),
            ("de-CH", "de"),
            ("it", "it"),
        ] {
            assert_eq!(Language::parse(tag).unwrap().transcription_code(), code);
        }
    }

    #[test]
    fn the_language_travels_as_its_tag() {
        let l = Language::parse("es-MX").unwrap();
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"es-MX\"");
        assert_eq!(serde_json::from_str::<Language>("\"es-MX\"").unwrap(), l);
        assert!(serde_json::from_str::<Language>("\"klingon\"").is_err());
        assert_eq!(Language::default(), Language::ENGLISH);
    }

    #[test]
    fn the_table_of_defaults_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for d in COUNTRY_DEFAULTS {
            assert!(seen.insert(d.country), "{} listed twice", d.country);
            assert_eq!(d.language.region(), Some(d.country), "{}", d.country);
            assert_eq!(Language::for_country(d.country), Some(d.language));
        }
        // Every shipped language is some country's default.
        for base in BaseLanguage::ALL {
            assert!(
                COUNTRY_DEFAULTS.iter().any(|d| d.language.base() == base),
                "{base:?}"
            );
        }
        assert_eq!(Language::for_country("se"), None);
    }
}
