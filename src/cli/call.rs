//! `reservoice call`: place a reservation call and follow it.

use super::client::{ApiClient, ClientError};
use super::render::{self, exit};
use super::ServerArgs;
use crate::domain::{CallRecord, ReservationRequest};

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
    /// Restaurant time zone (IANA, e.g. Europe/Paris); default: the server's
    #[arg(long)]
    pub timezone: Option<String>,
    /// Print the final call record as JSON (and nothing else on stdout)
    #[arg(long)]
    pub json: bool,
    /// Print the call id and return at once
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
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
            "Calling {} ({}) for a {}.",
            record.reservation.restaurant_name,
            record.reservation.restaurant_phone,
            reservation_words(&record)
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

fn reservation_words(record: &CallRecord) -> String {
    let r = &record.reservation;
    format!(
        "table for {} on {} at {}, under {}",
        r.party_size.get(),
        r.slot.spoken_date(),
        r.slot.spoken_time(),
        r.customer_name
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
