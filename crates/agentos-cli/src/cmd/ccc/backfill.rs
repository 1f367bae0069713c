//! `agentos ccc backfill`: a CCC root (usage logs, results, optional `/v1/usage` snapshot) →
//! `ccp_metrics_summary.json`.

use std::path::PathBuf;
use std::sync::Arc;

use agentos_config::DataDir;
use agentos_ingest::Progress;
use agentos_ingest::account::write_skipped;
use agentos_ingest::backfill::{BackfillOptions, backfill};
use anyhow::Context as _;

use crate::context::{Context, atomic_write};
use crate::flags::PricedRun;
use crate::output::{Bar, ExitStatus, note, print_account, skipped_lines_status};

/// Arguments of `agentos ccc backfill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CCC root (holding `logs/` and `results/`).
    #[arg(long)]
    pub ccp_root: PathBuf,
    /// A `/v1/usage` snapshot: a file, or a URL of a running CCC or collector.
    #[arg(long, value_name = "FILE|URL")]
    pub usage_json: Option<String>,
    /// Where to write the summary (default `<data_dir>/ccp_metrics_summary.json`).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Print the summary on stdout and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `--threads`, `--prices`, `--strict`.
    #[command(flatten)]
    pub run: PricedRun,
}

/// Runs `agentos ccc backfill`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let s = ctx.ingest()?;
    let opts = BackfillOptions {
        ccp_root: args.ccp_root.clone(),
        usage_json: args.usage_json.clone(),
        threads: s.threads(args.run.threads.threads),
        prices: s.prices(args.run.prices.path())?,
        generated_at: None,
    };
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(progress.clone(), "backfill");
    let res = backfill(&opts, Some(&progress));
    bar.finish();
    let mut b = res.with_context(|| format!("backfilling {}", args.ccp_root.display()))?;
    if !args.dry_run {
        let list = DataDir::new(&s.data_dir).backfill_skipped();
        b.summary.ingest.skipped_list = write_skipped(&list, &b.skipped)
            .with_context(|| format!("writing {}", list.display()))?;
    }
    let text = serde_json::to_string_pretty(&b.summary)?;
    if args.dry_run {
        println!("{text}");
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| DataDir::new(&s.data_dir).ccp_summary());
        note(&format!("dry run: {} not written", out.display()));
    } else {
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| DataDir::new(&s.data_dir).ccp_summary());
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        atomic_write(&out, format!("{text}\n").as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        if let (Some(models), Some(origin)) = (
            &b.summary.summary.model_health,
            &b.summary.summary.model_health_source,
        ) {
            agentos_ingest::source::usage_snapshot::save_model_health(
                &s.data_dir,
                models,
                format!("backfill of {origin}"),
            )
            .context("saving model_health.json")?;
        }
        println!("{}", out.display());
    }
    // A few examples on stderr; the full list is in the skipped-lines file.
    for sk in b.skipped.iter().take(3) {
        note(&format!(
            "skipped {}:{}: {}",
            sk.path.display(),
            sk.line,
            serde_json::to_string(&sk.reason).unwrap_or_default()
        ));
    }
    print_account("backfill", &b.summary.ingest);
    Ok(skipped_lines_status(
        args.run.strict.strict,
        &b.summary.ingest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::GlobalArgs;
    use crate::flags::{Prices, Strict, Threads};

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../agentos-ingest/tests/fixtures")
            .join(name)
    }

    #[test]
    fn backfill_writes_the_summary_with_model_health_and_sources() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("logs")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("results")).expect("mkdir");
        std::fs::write(
            root.path().join("logs/usage.jsonl"),
            "{\"ts\":1761267000.5,\"rid\":\"0badf00d\",\"lane\":\"zai\",\"model\":\"claude-haiku-4.5\",\"input_tokens\":120,\"output_tokens\":40,\"status\":200,\"reason\":\"ok\",\"op\":\"nonstream\"}\n{\"ts\":1761267001.0,\"rid\":\"torn\n",
        )
        .expect("write");
        std::fs::write(root.path().join("results/METRICS_1.json"), "{\"total\": 0}")
            .expect("write");
        let out = data.path().join("out/ccp_metrics_summary.json");
        let args = Args {
            ccp_root: root.path().to_path_buf(),
            usage_json: Some(fixture("ccc_usage_r35_full.json").display().to_string()),
            output: Some(out.clone()),
            dry_run: false,
            run: PricedRun {
                threads: Threads { threads: Some(1) },
                prices: Prices::default(),
                strict: Strict { strict: true },
            },
        };
        let ctx = Context::new(GlobalArgs {
            data_dir: Some(data.path().to_path_buf()),
            config: None,
            log: "warn".into(),
        });
        let code = run(args, &ctx).expect("backfill runs");
        assert_eq!(
            code,
            ExitStatus::Failure,
            "--strict with a torn line exits 1"
        );
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).expect("summary written")).expect("json");
        assert_eq!(v["turns"], 1);
        let keys: Vec<&String> = v["model_health"]
            .as_object()
            .expect("object")
            .keys()
            .collect();
        assert_eq!(keys, ["claude-3.5-sonnet", "claude-haiku-4.5"]);
        assert_eq!(v["model_health"]["claude-haiku-4.5"]["warn_pct_auto"], 0.72);
        assert_eq!(
            v["model_health"]["claude-haiku-4.5"]["gap_seconds_p95"],
            48.0
        );
        assert_eq!(v["ingest"]["lines_skipped"], 1);
        assert!(data.path().join("ingest/backfill-skipped.jsonl").is_file());
        assert_eq!(v["sources"].as_array().expect("array").len(), 3);
    }

    #[test]
    fn dry_run_writes_nothing_and_saves_no_model_health() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("logs")).expect("mkdir");
        std::fs::write(
            root.path().join("logs/usage.jsonl"),
            "{\"ts\":1761267000.5,\"rid\":\"0badf00d\",\"lane\":\"zai\",\"model\":\"glm-4.6\",\"input_tokens\":1,\"output_tokens\":1,\"status\":200}\n{\"torn\n",
        )
        .expect("write");
        let args = |dry_run| Args {
            ccp_root: root.path().to_path_buf(),
            usage_json: Some(fixture("ccc_usage_r35_full.json").display().to_string()),
            output: None,
            dry_run,
            run: PricedRun {
                threads: Threads { threads: Some(1) },
                prices: Prices::default(),
                strict: Strict { strict: false },
            },
        };
        let ctx = Context::new(GlobalArgs {
            data_dir: Some(data.path().to_path_buf()),
            config: None,
            log: "warn".into(),
        });
        assert_eq!(run(args(true), &ctx).expect("dry run"), ExitStatus::Ok);
        let left: Vec<_> = std::fs::read_dir(data.path())
            .expect("data dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "a dry run wrote {left:?}");
        // The real run writes the summary, the skipped list and the model health cache.
        run(args(false), &ctx).expect("backfill");
        let d = DataDir::new(data.path());
        assert!(d.ccp_summary().is_file());
        let cache: agentos_core::rollup::ModelHealthCache =
            serde_json::from_slice(&std::fs::read(d.model_health_cache()).expect("cache"))
                .expect("json");
        assert!(cache.source.starts_with("backfill of "), "{}", cache.source);
        assert_eq!(cache.models.len(), 2);
    }
}
