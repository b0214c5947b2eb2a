//! The model-version watch as QA sees it (the QA view's "Model versions" and `dokuei ledger
//! watch`), and its report for a QA committee: one self-contained HTML file with the tables
//! and plots (inline SVG, no script), readable in any browser and printable to PDF.

use std::fmt::Write as _;
use std::path::Path;

use dokuei_ledger::watch::{Interval, VersionWatch, Watch, WatchThresholds};

use crate::AppError;

/// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies).
const COLOURS: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(i: &Interval) -> String {
    format!(
        "{:.1}% ({:.1}–{:.1})",
        100.0 * i.value,
        100.0 * i.low,
        100.0 * i.high
    )
}

/// Score histograms of a model's versions, as shares of each version's findings.
fn histogram_svg(versions: &[&VersionWatch]) -> String {
    let (w, h, left, bottom) = (520.0, 220.0, 40.0, 30.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - 10.0;
    let shares: Vec<Vec<f64>> = versions
        .iter()
        .map(|v| {
            let n = f64::from(v.histogram.iter().sum::<u32>().max(1));
            v.histogram.iter().map(|&c| f64::from(c) / n).collect()
        })
        .collect();
    let top = shares
        .iter()
        .flatten()
        .copied()
        .fold(0.05_f64, f64::max)
        .min(1.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="Score distribution per version">"#
    );
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#555"/><line x1="{left}" y1="10" x2="{left}" y2="{y0}" stroke="#555"/>"##,
        y0 = 10.0 + plot_h,
        x1 = left + plot_w
    );
    for t in 0..=4 {
        let x = left + plot_w * f64::from(t) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" font-size="10" text-anchor="middle">{:.2}</text>"#,
            h - 12.0,
            f64::from(t) / 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">score</text><text x="4" y="14" font-size="10">{:.0}%</text>"#,
        left + plot_w / 2.0,
        h - 1.0,
        100.0 * top
    );
    for (k, sh) in shares.iter().enumerate() {
        let mut points = String::new();
        for (b, &v) in sh.iter().enumerate() {
            let (x0, x1) = (
                left + plot_w * b as f64 / 20.0,
                left + plot_w * (b + 1) as f64 / 20.0,
            );
            let y = 10.0 + plot_h * (1.0 - v / top);
            let _ = write!(points, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
        }
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{points}"/>"#,
            COLOURS[k % COLOURS.len()]
        );
    }
    s.push_str("</svg>");
    s
}

/// Confirm, edit, reject and kept rates of each version with their 95% intervals.
fn rates_svg(versions: &[&VersionWatch]) -> String {
    let (w, h, left, bottom) = (520.0, 220.0, 40.0, 40.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - 10.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="Decision rates per version">"#
    );
    let y = |v: f64| 10.0 + plot_h * (1.0 - v);
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#555"/>"##,
        y(0.0),
        left + plot_w,
        y(0.0)
    );
    for t in [0.0, 0.5, 1.0] {
        let _ = write!(
            s,
            r#"<text x="4" y="{:.1}" font-size="10">{:.0}%</text>"#,
            y(t) + 3.0,
            100.0 * t
        );
    }
    let kinds = ["confirmed", "edited", "rejected", "kept"];
    let group_w = plot_w / kinds.len() as f64;
    for (g, kind) in kinds.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{kind}</text>"#,
            left + group_w * (g as f64 + 0.5),
            h - 22.0
        );
        for (k, v) in versions.iter().enumerate() {
            let i = match g {
                0 => v.confirm_rate,
                1 => v.edit_rate,
                2 => v.reject_rate,
                _ => v.kept_rate,
            };
            let x = left
                + group_w * g as f64
                + group_w * (k as f64 + 1.0) / (versions.len() as f64 + 1.0);
            let c = COLOURS[k % COLOURS.len()];
            let _ = write!(
                s,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"/><circle cx="{x:.1}" cy="{:.1}" r="3.5" fill="{c}"/>"#,
                y(i.low),
                y(i.high),
                y(i.value)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The report: per model, its versions (table, score distributions, decision rates) and each
/// version against the one before it, with the alerts.
pub fn report_html(watch: &Watch, thresholds: &WatchThresholds, created: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dokuei model-version watch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:0.5em 0}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}th{{background:#eee}}td:first-child,th:first-child{{text-align:left}}
.alert{{color:#fff;background:#b00020;padding:1px 6px;border-radius:3px}}.ok{{color:#fff;background:#2e7d32;padding:1px 6px;border-radius:3px}}
.muted{{color:#666}}.key span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}</style></head><body>
<h1>Model-version watch</h1>
<p class="muted">Dokuei {version}, written {created}. From the decision ledger: every AI finding shown, and the physician's effective decision on it.</p>
<p>Thresholds: an alert when PSI &gt; {psi}, or a Kolmogorov–Smirnov p &lt; {ks}, or the share of findings physicians keep drops by at least {drop:.0} points with its 95% interval wholly below zero. Versions with fewer than {min} scored findings are compared but never alert.</p>"#,
        version = env!("CARGO_PKG_VERSION"),
        created = esc(created),
        psi = thresholds.psi,
        ks = thresholds.ks_p,
        drop = 100.0 * thresholds.agreement_drop,
        min = thresholds.min_findings,
    );
    if watch.versions.is_empty() {
        h.push_str("<p>The ledger holds no AI finding yet.</p>");
    }
    let mut models: Vec<&str> = watch.versions.iter().map(|v| v.model_id.as_str()).collect();
    models.dedup();
    for model in models {
        let versions: Vec<&VersionWatch> = watch
            .versions
            .iter()
            .filter(|v| v.model_id == model)
            .collect();
        let _ = write!(h, "<h2>{}</h2>", esc(model));
        if model.ends_with("-demo") {
            h.push_str("<p class=\"muted\">A demonstration model trained on synthetic data: not for clinical use.</p>");
        }
        h.push_str("<table><tr><th>Version</th><th>First run</th><th>Last run</th><th>Analyses</th><th>Findings</th><th>Median score</th><th>Confirmed</th><th>Edited</th><th>Rejected</th><th>Kept</th><th>Undecided</th></tr>");
        for v in &versions {
            let _ = write!(
                h,
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&v.model_version),
                if v.shadow {
                    format!(
                        " <span class=\"muted\">(shadow of {}; never shown, so never decided)</span>",
                        esc(v.shadowed_version.as_deref().unwrap_or("?"))
                    )
                } else {
                    String::new()
                },
                esc(v.first_seen.get(..10).unwrap_or(&v.first_seen)),
                esc(v.last_seen.get(..10).unwrap_or(&v.last_seen)),
                v.analyses,
                v.findings,
                v.score_median
                    .map_or_else(|| "–".into(), |m| format!("{m:.3}")),
                pct(&v.confirm_rate),
                pct(&v.edit_rate),
                pct(&v.reject_rate),
                pct(&v.kept_rate),
                v.undecided
            );
        }
        h.push_str("</table><p class=\"key\">");
        for (k, v) in versions.iter().enumerate() {
            let _ = write!(
                h,
                "<span style=\"background:{}\"></span>{}",
                COLOURS[k % COLOURS.len()],
                esc(&v.model_version)
            );
        }
        h.push_str("</p>");
        h.push_str(&histogram_svg(&versions));
        h.push_str(&rates_svg(&versions));
        let comparisons: Vec<_> = watch
            .comparisons
            .iter()
            .filter(|c| c.model_id == model)
            .collect();
        if !comparisons.is_empty() {
            h.push_str("<h3>Each version against the one before it</h3><table><tr><th>Versions</th><th>PSI</th><th>KS D</th><th>KS p</th><th>Kept, difference (95% CI)</th><th>Status</th></tr>");
            for c in comparisons {
                let num = |v: Option<f64>, f: fn(f64) -> String| v.map_or_else(|| "–".into(), f);
                let kept = if c.shadow.is_some() {
                    "n/a (shadow: see below)".to_owned()
                } else {
                    format!(
                        "{:+.1} ({:+.1} to {:+.1}) points",
                        100.0 * c.kept_difference.value,
                        100.0 * c.kept_difference.low,
                        100.0 * c.kept_difference.high
                    )
                };
                let _ = write!(
                    h,
                    "<tr><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td><td>{kept}</td><td>{}</td></tr>",
                    esc(&c.previous),
                    esc(&c.current),
                    num(c.psi, |v| format!("{v:.3}")),
                    num(c.ks_d, |v| format!("{v:.3}")),
                    num(c.ks_p, |v| format!("{v:.2e}")),
                    if c.alert {
                        "<span class=\"alert\">ALERT</span>"
                    } else {
                        "<span class=\"ok\">no alert</span>"
                    }
                );
                if let Some(m) = &c.shadow {
                    let _ = write!(
                        h,
                        "<tr><td colspan=\"6\">In shadow on {} signed-off run(s): readers would likely keep {} of its {} finding(s) (the version they saw: {}); it finds {} of the {} finding(s) readers kept (the version they saw: {}).</td></tr>",
                        m.runs,
                        pct(&m.shadow_precision),
                        m.shadow_findings,
                        pct(&m.current_precision),
                        pct(&m.shadow_sensitivity),
                        m.kept_findings,
                        pct(&m.current_sensitivity)
                    );
                }
                if !c.reasons.is_empty() {
                    let _ = write!(
                        h,
                        "<tr><td colspan=\"6\" class=\"muted\">{}</td></tr>",
                        c.reasons
                            .iter()
                            .map(|r| esc(r))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
            }
            h.push_str("</table>");
        }
    }
    h.push_str(
        "<h2>Methods</h2><ul>\
<li>Rates are over AI findings with a decision (the latest, corrections replacing what they correct), with Wilson 95% intervals. Kept = confirmed or edited.</li>\
<li>The kept-rate difference has Newcombe's hybrid score interval (1998, method 10).</li>\
<li>PSI uses up to ten bins at the earlier version's score deciles; an empty bin counts as 0.01% so that the index stays finite.</li>\
<li>The Kolmogorov–Smirnov p-value is asymptotic (Kolmogorov's distribution at √(mn/(m+n))·D).</li>\
<li>Scores are the ones the findings were shown with; findings of a run that a later run replaced are counted, undecided.</li></ul>\
</body></html>\n",
    );
    h
}

/// Writes the report to `path` (through a temporary file).
pub fn write_report(
    watch: &Watch,
    thresholds: &WatchThresholds,
    path: &Path,
) -> Result<(), AppError> {
    let html = report_html(watch, thresholds, &crate::ledger::now_utc());
    crate::training::write_text(path, &html).map(|_| ())
}
