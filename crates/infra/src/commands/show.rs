//! `infra show PLANFILE`: a saved plan, as text, JSON or Markdown. Offline: no host is asked.

use infra_plan::view;

use super::change::read_saved;
use crate::cli::ShowArgs;
use crate::exit::Exit;
use crate::output;
use crate::settings::Settings;

/// Prints the saved plan.
pub fn run(settings: &Settings, args: &ShowArgs) -> anyhow::Result<Exit> {
    let plan = read_saved(&args.plan_file)?;
    if args.json {
        output::outln(&serde_json::to_string_pretty(&view::json::view(&plan))?);
    } else if args.markdown {
        output::out(&view::markdown::markdown(&plan));
    } else {
        output::out(&view::text::text(&plan, settings.style.plan_colour()));
    }
    Ok(Exit::Success)
}
