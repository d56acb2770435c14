//! `reservoice call`: place a reservation call and follow it.

use super::client::{ApiClient, ClientError};
use super::render::{self, exit};
use super::ServerArgs;
use crate::domain::zones::{self, NumberZone};
use crate::domain::{CallRecord, Language, ReservationRequest};

/// Arguments of `call`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// Restaurant phone number, international form (+12125550123)
    #[arg(long)]
    pub to: String,
    /// Restaurant name
    #[arg(long)]
    pub restaurant: String,
    /// Number of guests
    #[arg(long)]
    pub party_size: i64,
    /// Date: tomorrow, friday, 2026-12-03, dec 3 …
    #[arg(long)]
    pub date: String,
    /// Time: 7pm, 19:30, 7:30pm …
    #[arg(long)]
    pub time: String,
    /// Name for the booking
    #[arg(long)]
    pub name: String,
    /// How far from the requested time is fine: 30m, 1h … (default: exact time only)
    #[arg(long)]
    pub flexibility: Option<String>,
    /// A number the restaurant may call back
    #[arg(long)]
    pub callback: Option<String>,
    /// Special requests (window seat, high chair…)
    #[arg(long)]
    pub notes: Option<String>,
    /// Restaurant time zone (IANA, e.g. Europe/Paris); default: the zone of the
    /// number's area code, else the server's
    #[arg(long)]
    pub timezone: Option<String>,
    /// Language the restaurant is spoken to in, a BCP 47 tag: fr, es-MX, de, ja …
    /// (default: the server's RESERVOICE_LANGUAGE, else the main language of the
    /// number's country)
    #[arg(long, value_parser = language_tag)]
    pub language: Option<String>,
    /// Print the final call record as JSON (and nothing else on stdout)
    #[arg(long)]
    pub json: bool,
    /// Print the call id and return at once
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `--language` is checked before anything is sent: a tag the server would
/// refuse is a usage error (exit code 2) that lists the supported languages.
fn language_tag(tag: &str) -> Result<String, String> {
    Language::parse(tag)
        .map(|_| tag.trim().to_string())
        .map_err(|e| e.to_string())
}

impl CallArgs {
    /// The API request body.
    pub fn request(&self) -> ReservationRequest {
        ReservationRequest {
            to: self.to.clone(),
            restaurant: self.restaurant.clone(),
            party_size: self.party_size,
            date: self.date.clone(),
            time: self.time.clone(),
            name: self.name.clone(),
            flexibility: self.flexibility.clone(),
            callback: self.callback.clone(),
            notes: self.notes.clone(),
            timezone: self.timezone.clone(),
            language: self.language.clone(),
        }
    }
}

/// The exit code for a client error.
pub fn error_code(e: &ClientError) -> i32 {
    match e {
        ClientError::Invalid(_) => exit::INVALID,
        ClientError::CallNotPlaced(_) => exit::NOT_COMPLETED,
        _ => exit::ERROR,
    }
}

/// Place the call, follow it, print, and return the exit code.
pub async fn place_and_follow(
    client: &ApiClient,
    request: &ReservationRequest,
    json: bool,
    no_wait: bool,
) -> Result<(CallRecord, i32), ClientError> {
    let record = client.create_call(request).await?;
    if no_wait {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&record).unwrap_or_default()
            );
        } else {
            println!("{}", record.id);
        }
        return Ok((record, exit::BOOKED));
    }
    if !json {
        println!(
            "Calling {} ({}) in {} for a {}.",
            record.reservation.restaurant_name,
            record.reservation.restaurant_phone,
            language_words(&record),
            reservation_words(&record, zone_named(request))
        );
    }
    let done = tokio::select! {
        done = render::follow(client, &record.id, json) => done?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "\nStopped following. The call goes on; see it with `reservoice calls show {}`.",
                record.id
            );
            return Ok((record, exit::INTERRUPTED));
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&done).unwrap_or_default()
        );
    } else {
        println!();
        println!("{}", render::outcome_text(&done));
    }
    let code = render::exit_code(&done);
    Ok((done, code))
}

/// The language the restaurant is spoken to in, as the first line names it:
/// "French (fr-FR)". What the person reads stays English.
fn language_words(record: &CallRecord) -> String {
    let language = record.reservation.language;
    format!("{} ({language})", language.english_name())
}

/// Whether the request named the restaurant's zone (`--timezone`).
fn zone_named(request: &ReservationRequest) -> bool {
    request
        .timezone
        .as_deref()
        .is_some_and(|z| !z.trim().is_empty())
}

/// The reservation as the first line tells it, with the zone its date and
/// time were resolved in.
fn reservation_words(record: &CallRecord, zone_named: bool) -> String {
    let r = &record.reservation;
    format!(
        "table for {} on {} at {} ({}), under {}",
        r.party_size.get(),
        r.slot.spoken_date(),
        r.slot.spoken_time(),
        zone_words(record, zone_named),
        r.customer_name
    )
}

/// Which zone the server used and why, when the number did not settle it:
/// "America/Los_Angeles time", or "Europe/Paris time: the server's default,
/// as this number may be in several time zones; choose with --timezone".
fn zone_words(record: &CallRecord, zone_named: bool) -> String {
    let zone = record.reservation.slot.timezone;
    if zone_named {
        return format!("{} time", zone.name());
    }
    let phone = record.reservation.restaurant_phone.as_str();
    let why = match zones::zone_of_number(phone, record.created_at) {
        NumberZone::One(_) => return format!("{} time", zone.name()),
        NumberZone::Several(_) => "this number may be in several time zones",
        NumberZone::Unknown => "this number's time zone is unknown",
    };
    format!(
        "{} time: the server's default, as {why}; choose with --timezone",
        zone.name()
    )
}

/// `reservoice call …`
pub async fn run(args: CallArgs) -> i32 {
    let client = match ApiClient::new(&args.server.server, args.server.api_token.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reservoice: {e}");
            return exit::ERROR;
        }
    };
    match place_and_follow(&client, &args.request(), args.json, args.no_wait).await {
        Ok((_, code)) => code,
        Err(e) => {
            eprintln!("reservoice: {e}");
            error_code(&e)
        }
    }
}
