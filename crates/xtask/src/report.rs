//! The benchmark's figures, as a Markdown table and an SVG plot, and their place in
//! docs/performance.md (between two marker comments, so the prose around them stays).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// The figures for one fleet size (medians).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Hosts.
    pub hosts: usize,
    /// One parallel round trip with fresh SSH connections to every host, in seconds.
    pub floor: f64,
    /// `infra plan` with nothing to change, in seconds.
    pub plan: f64,
    /// `infra apply` with nothing to change, in seconds.
    pub apply: f64,
    /// The largest peak RSS of any plan or apply run, in MiB.
    pub peak_mib: f64,
    /// SSH round trips per host of a plan.
    pub round_trips_per_host: f64,
}

/// A cold apply against the same packages by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct Cold {
    /// Hosts.
    pub hosts: usize,
    /// `infra apply` on fresh hosts, in seconds.
    pub apply: f64,
    /// `apt-get update && apt-get install` of each host's packages, every host at once.
    pub by_hand: f64,
    /// What apt fetched over all hosts, by hand, in MB.
    pub downloaded_mb: f64,
    /// The time apt says one host spent fetching, by hand (median), in seconds.
    pub download_seconds: f64,
}

/// A plan of the largest fleet at one `--parallelism`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parallelism {
    /// The flag's value.
    pub parallelism: u16,
    /// The plan's median, in seconds.
    pub plan: f64,
}

/// `infra validate` of a hostile topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// Dangling host references in it.
    pub references: usize,
    /// Its size in bytes.
    pub bytes: usize,
    /// Lines `infra validate` printed.
    pub error_lines: usize,
    /// Median time, in seconds.
    pub seconds: f64,
}

/// Everything one benchmark run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Hosts in the lab.
    pub largest: usize,
    /// `infra lab up` of the lab, in seconds.
    pub lab_up: f64,
    /// Memory of one idle lab host (median), in MiB.
    pub idle_host_mib: f64,
    /// Memory of the whole converged lab, in MiB.
    pub converged_lab_mib: f64,
    /// One row per fleet size.
    pub rows: Vec<Row>,
    /// The cold apply, when measured.
    pub cold: Option<Cold>,
    /// Plans of the largest fleet by `--parallelism`.
    pub parallelism: Vec<Parallelism>,
    /// Runs behind each median.
    pub runs: usize,
    /// What the machine is.
    pub machine: String,
    /// Validation of a hostile topology.
    pub validation: Validation,
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The results as Markdown.
pub fn markdown(results: &Results) -> String {
    let mut text = format!(
        "Measured by `cargo xtask bench` on {} ({}); each figure is the median of {} runs.\n\n\
         | hosts | SSH floor | `infra plan` | plan / floor | no-op `infra apply` | apply / floor | peak RSS | plan round trips per host |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        today(),
        results.machine,
        results.runs
    );
    for row in &results.rows {
        let _ = writeln!(
            text,
            "| {} | {:.2} s | {:.2} s | {:.2}x | {:.2} s | {:.2}x | {:.1} MiB | {:.2} |",
            row.hosts,
            row.floor,
            row.plan,
            row.plan / row.floor,
            row.apply,
            row.apply / row.floor,
            row.peak_mib,
            row.round_trips_per_host
        );
    }
    text.push_str("\n![infra plan and no-op apply against the SSH floor](performance.svg)\n");
    if !results.parallelism.is_empty() {
        let _ = write!(
            text,
            "\n`infra plan` of {} hosts by `--parallelism` (median):\n\n| `--parallelism` | plan |\n|---:|---:|\n",
            results.largest
        );
        for p in &results.parallelism {
            let _ = writeln!(text, "| {} | {:.2} s |", p.parallelism, p.plan);
        }
    }
    if let Some(cold) = &results.cold {
        let _ = write!(
            text,
            "\nCold, on {} fresh hosts:\n\n| | time |\n|---|---:|\n\
             | `infra apply` (packages, configs, services, firewall, database, edge check) | {:.0} s |\n\
             | the same packages by hand (`apt-get update && apt-get install` on every host at once) | {:.0} s |\n\
             | `infra apply` / by hand | {:.2}x |\n\n\
             By hand, apt fetched {:.0} MB over all hosts ({:.1} MB a host), and spent {:.0} s of the {:.0} s fetching (median host).\n",
            cold.hosts,
            cold.apply,
            cold.by_hand,
            cold.apply / cold.by_hand,
            cold.downloaded_mb,
            cold.downloaded_mb / cold.hosts.max(1) as f64,
            cold.download_seconds,
            cold.by_hand
        );
    }
    let _ = write!(
        text,
        "\nThe lab: {} hosts up in {:.0} s; one idle host uses {:.1} MiB, the converged lab {:.0} MiB in all.\n",
        results.largest, results.lab_up, results.idle_host_mib, results.converged_lab_mib
    );
    let v = &results.validation;
    let _ = write!(
        text,
        "\n`infra validate` of a {} KB topology with {} host references that do not exist: {:.2} s, {} lines of errors (the first 50 and a count).\n",
        v.bytes / 1000,
        v.references,
        v.seconds,
        v.error_lines
    );
    text
}

/// A line plot of floor, plan and no-op apply against the number of hosts.
pub fn svg(results: &Results) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 400.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 610.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 350.0;
    let max_hosts = results
        .rows
        .iter()
        .map(|r| r.hosts)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let highest = results
        .rows
        .iter()
        .flat_map(|r| [r.floor, r.plan, r.apply])
        .fold(0.0, f64::max);
    let step = nice_step(highest / 5.0);
    let top_value = (highest / step).ceil().max(1.0) * step;
    let x = |hosts: f64| LEFT + (RIGHT - LEFT) * hosts / max_hosts;
    let y = |seconds: f64| BOTTOM - (BOTTOM - TOP) * seconds / top_value;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">infra against the SSH floor (median of {} runs)</text>\n",
        WIDTH / 2.0,
        results.runs
    );
    let mut value = 0.0;
    while value <= top_value + step / 2.0 {
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{value} s</text>",
            y(value),
            LEFT - 6.0,
            y(value) + 4.0
        );
        value += step;
    }
    for row in &results.rows {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(row.hosts as f64),
            BOTTOM + 18.0,
            row.hosts
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{BOTTOM}\" y2=\"{BOTTOM}\" stroke=\"black\"/><line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{BOTTOM}\" stroke=\"black\"/>\n\
         <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">hosts</text>",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 38.0
    );
    let series: [Series; 3] = [
        ("SSH floor", "#777", "6 4", |r| r.floor),
        ("infra plan", "#1f77b4", "none", |r| r.plan),
        ("no-op infra apply", "#d62728", "none", |r| r.apply),
    ];
    for (index, (name, colour, dashes, value)) in series.iter().enumerate() {
        let points: Vec<String> = results
            .rows
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.hosts as f64), y(value(r))))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dashes}\"/>",
            points.join(" ")
        );
        for r in &results.rows {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                x(r.hosts as f64),
                y(value(r))
            );
        }
        let legend_y = TOP + 10.0 + 18.0 * index as f64;
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{legend_y}\" y2=\"{legend_y}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dashes}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            LEFT + 12.0,
            LEFT + 40.0,
            LEFT + 46.0,
            legend_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One line of the plot: its name, colour, dash pattern and value.
type Series = (&'static str, &'static str, &'static str, fn(&Row) -> f64);

/// 1, 2 or 5 times a power of ten, at least `rough`.
fn nice_step(rough: f64) -> f64 {
    if rough <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

/// The results' place in docs/performance.md.
pub const BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench --write`) -->";
/// Where it ends.
pub const END: &str = "<!-- bench:end -->";

/// Writes the results between the markers of docs/performance.md, and the plot beside it.
pub fn write_docs(root: &Path, results: &Results) -> anyhow::Result<()> {
    let page = root.join("docs/performance.md");
    let text = fs_err::read_to_string(&page)?;
    let start = text
        .find(BEGIN)
        .with_context(|| format!("no `{BEGIN}` in {}", page.display()))?;
    let end = text
        .find(END)
        .with_context(|| format!("no `{END}` in {}", page.display()))?;
    let updated = format!(
        "{}{BEGIN}\n{}{}",
        &text[..start],
        markdown(results),
        &text[end..]
    );
    fs_err::write(&page, updated)?;
    fs_err::write(root.join("docs/performance.svg"), svg(results))?;
    Ok(())
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Results {
        let row = |hosts, floor, plan, apply| Row {
            hosts,
            floor,
            plan,
            apply,
            peak_mib: 20.0,
            round_trips_per_host: 1.0,
        };
        Results {
            largest: 50,
            lab_up: 70.0,
            idle_host_mib: 9.0,
            converged_lab_mib: 1800.0,
            rows: vec![row(1, 0.2, 0.3, 0.35), row(50, 3.0, 3.6, 3.5)],
            cold: Some(Cold {
                hosts: 50,
                apply: 180.0,
                by_hand: 150.0,
                downloaded_mb: 1500.0,
                download_seconds: 12.0,
            }),
            parallelism: vec![Parallelism {
                parallelism: 10,
                plan: 3.7,
            }],
            runs: 5,
            machine: "2 cores".to_owned(),
            validation: Validation {
                references: 20_000,
                bytes: 230_000,
                error_lines: 120,
                seconds: 0.11,
            },
        }
    }

    #[test]
    fn the_table_holds_every_figure_and_ratio() {
        let text = markdown(&results());
        assert!(
            text.contains("| 50 | 3.00 s | 3.60 s | 1.20x | 3.50 s | 1.17x | 20.0 MiB | 1.00 |"),
            "{text}"
        );
        assert!(
            text.contains("| `infra apply` / by hand | 1.20x |"),
            "{text}"
        );
        assert!(text.contains("| 10 | 3.70 s |"), "{text}");
        assert!(
            text.contains("(30.0 MB a host), and spent 12 s of the 150 s fetching"),
            "{text}"
        );
        assert!(
            text.contains("20000 host references that do not exist: 0.11 s, 120 lines"),
            "{text}"
        );
    }

    #[test]
    fn the_plot_is_one_svg_with_three_series_and_a_point_per_size() {
        let svg = svg(&results());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains(">4 s</text>"), "the axis reaches past 3.6 s");
    }

    #[test]
    fn results_replace_only_what_is_between_the_markers() {
        let root = tempfile::tempdir().expect("dir");
        fs_err::create_dir_all(root.path().join("docs")).expect("docs");
        let page = root.path().join("docs/performance.md");
        fs_err::write(
            &page,
            format!("# Before\n{BEGIN}\nold figures\n{END}\n## After\n"),
        )
        .expect("page");
        write_docs(root.path(), &results()).expect("written");
        let text = fs_err::read_to_string(&page).expect("read");
        assert!(text.starts_with("# Before\n"));
        assert!(text.ends_with(&format!("{END}\n## After\n")));
        assert!(!text.contains("old figures"));
        assert!(root.path().join("docs/performance.svg").is_file());
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
