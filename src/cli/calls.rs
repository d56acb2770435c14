//! `reservoice calls` and `reservoice calls show ID`.

use super::client::ApiClient;
use super::render::{self, exit};
use super::ServerArgs;
use crate::domain::phone::mask;

/// Arguments of `calls`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallsArgs {
    /// `show ID` to see one call
    #[command(subcommand)]
    pub action: Option<CallsAction>,
    /// How many calls to list
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// JSON instead of a table
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `calls show`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CallsAction {
    /// Show one call with its transcript
    Show {
        /// The call id (Twilio CallSid)
        id: String,
    },
}

/// Run `calls`.
pub async fn run(args: CallsArgs) -> i32 {
    let client = match ApiClient::new(&args.server.server, args.server.api_token.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reservoice: {e}");
            return exit::ERROR;
        }
    };
    let result = match &args.action {
        None => client.list_calls(args.limit).await.map(|calls| {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&calls).unwrap_or_default()
                );
            } else if calls.is_empty() {
                println!("No calls yet.");
            } else {
                println!(
                    "{:<34}  {:<16}  {:<24}  {:<12}  {:<12}  OUTCOME",
                    "ID", "WHEN (UTC)", "RESTAURANT", "TO", "STATUS"
                );
                for c in calls {
                    let restaurant: String = c.restaurant.chars().take(24).collect();
                    println!(
                        "{:<34}  {:<16}  {:<24}  {:<12}  {:<12}  {}",
                        c.id,
                        c.created_at.format("%Y-%m-%d %H:%M"),
                        restaurant,
                        mask(&c.to),
                        c.status.as_str(),
                        c.outcome.map(|o| o.as_str()).unwrap_or("-")
                    );
                }
            }
        }),
        Some(CallsAction::Show { id }) => client.get_call(id).await.map(|record| {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&record).unwrap_or_default()
                );
                return;
            }
            let r = &record.reservation;
            println!("Call        {}", record.id);
            println!("Restaurant  {} ({})", r.restaurant_name, r.restaurant_phone);
            println!(
                "Asked for   table for {} on {} at {} ({}), under {}",
                r.party_size.get(),
                r.slot.spoken_date(),
                r.slot.spoken_time(),
                r.slot.timezone.name(),
                r.customer_name
            );
            println!(
                "Placed      {}",
                record.created_at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            println!("Status      {}", record.status.as_str());
            if let Some(who) = &record.answered_by {
                println!("Answered by {who}");
            }
            if let Some(path) = &record.recording {
                println!(
                    "Recording   {path} (GET /api/calls/{}/recording)",
                    record.id
                );
            }
            println!();
            if record.transcript.is_empty() {
                println!("(no transcript)");
            }
            for line in &record.transcript {
                println!("{}", render::line_text(line));
            }
            println!();
            println!("{}", render::outcome_text(&record));
        }),
    };
    match result {
        Ok(()) => exit::BOOKED,
        Err(e) => {
            eprintln!("reservoice: {e}");
            super::call::error_code(&e)
        }
    }
}
