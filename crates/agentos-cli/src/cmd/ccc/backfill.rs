//! `agentos ccc backfill`: a CCC root (usage logs, results, optional `/v1/usage` snapshot) →
//! `ccp_metrics_summary.json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agentos_config::DataDir;
use agentos_ingest::Progress;
use agentos_ingest::account::write_skipped;
use agentos_ingest::backfill::{BackfillOptions, backfill};
use anyhow::Context as _;

use super::ingest::{Bar, exit_for, prices, print_account, settings};
use crate::global::GlobalArgs;

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
    /// Worker threads (0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Price table override (JSON, same shape as the embedded one).
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Exit 1 when a line had to be skipped.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `agentos ccc backfill`.
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let s = settings(g)?;
    let opts = BackfillOptions {
        ccp_root: args.ccp_root.clone(),
        usage_json: args.usage_json.clone(),
        threads: args.threads.or(s.section.threads).unwrap_or(0),
        prices: prices(args.prices.as_deref(), &s)?,
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
    } else {
        let out = args
            .output
            .clone()
            .unwrap_or_else(|| DataDir::new(&s.data_dir).ccp_summary());
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        agentos_config::atomic_write(&out, format!("{text}\n").as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        println!("{}", out.display());
    }
    // A few examples on stderr; the full list is in the skipped-lines file.
    for sk in b.skipped.iter().take(3) {
        eprintln!(
            "agentos: skipped {}:{}: {}",
            sk.path.display(),
            sk.line,
            serde_json::to_string(&sk.reason).unwrap_or_default()
        );
    }
    print_account("backfill", &b.summary.ingest);
    Ok(exit_for(args.strict, &b.summary.ingest))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            threads: Some(1),
            prices: None,
            strict: true,
        };
        let g = GlobalArgs {
            data_dir: Some(data.path().to_path_buf()),
            config: None,
            log: "warn".into(),
        };
        let code = run(args, &g).expect("backfill runs");
        assert_eq!(code, ExitCode::from(1), "--strict with a torn line exits 1");
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
}
