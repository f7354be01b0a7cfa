//! `infra completions SHELL` and `infra man`: both generated from the clap definition, so they
//! cannot drift from the commands.

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::exit::Exit;
use crate::output;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "infra", &mut script);
    output::out(&String::from_utf8_lossy(&script));
    Ok(Exit::Success)
}

/// Prints the manual page, with a section per subcommand.
pub fn man() -> anyhow::Result<Exit> {
    let command = Cli::command();
    let mut page = Vec::new();
    let manual = clap_mangen::Man::new(command.clone());
    manual.render_title(&mut page)?;
    manual.render_name_section(&mut page)?;
    manual.render_synopsis_section(&mut page)?;
    manual.render_description_section(&mut page)?;
    manual.render_options_section(&mut page)?;
    manual.render_subcommands_section(&mut page)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("infra {}", sub.get_name());
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        page.extend_from_slice(format!("{}\n", roff_text(&about)).as_bytes());
        let sub_manual = clap_mangen::Man::new(sub.clone().bin_name(name));
        sub_manual.render_synopsis_section(&mut page)?;
        sub_manual.render_options_section(&mut page)?;
    }
    manual.render_extra_section(&mut page)?;
    output::out(&String::from_utf8_lossy(&page));
    Ok(Exit::Success)
}

/// Text that roff prints as written (a leading `.` or `'` would be a request).
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.replace('\\', "\\e")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
