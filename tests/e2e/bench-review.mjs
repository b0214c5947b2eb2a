// The review benchmark (printed, not a test), in the release app under Xvfb on a 300-slice CT:
// time from Analyse to the overlays on screen against the engine's own analysis time (the UI's
// share: IPC, ledger rows for the findings, React and the overlay), and time from a decision
// click to its row committed in the ledger.
//
//   DOKUEI_APP=…/release/dokuei-app DOKUEI_BENCH_STUDY=dir node bench-review.mjs

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launch } from "./harness.mjs";

const study = process.env.DOKUEI_BENCH_STUDY;
if (!study) throw new Error("set DOKUEI_BENCH_STUDY to a study folder");
const runs = Number(process.env.DOKUEI_BENCH_RUNS ?? 3);
const decisions = Number(process.env.DOKUEI_BENCH_DECISIONS ?? 60);

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const median = (xs) => quantile(xs, 0.5);

const ledger = path.join(mkdtempSync(path.join(tmpdir(), "dokuei-bench-review-")), "ledger.sqlite3");
const app = await launch({ DOKUEI_LEDGER: ledger });
const b = app.browser;
try {
  await b.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 30000 });
  await b.setTimeout({ script: 900000 });
  const opened = await b.executeAsync((dir, done) => {
    window.__dokuei.openPaths([dir]).then(done, (e) => done(String(e)));
  }, study);
  if (opened) throw new Error(opened);
  await b.waitUntil(() => b.execute(() => window.__dokuei.review().review !== null), { timeout: 30000 });
  const created = await b.executeAsync((done) => {
    window.__dokuei.review().createReader("Benchmark reader", "radiologist").then(done, (e) => done(String(e)));
  });
  if (created) throw new Error(created);
  await b.waitUntil(() => b.execute(() => window.__dokuei.review().phase === "reviewing"), { timeout: 10000 });
  // Let the viewer's background loading of the series finish first (it competes for the cores).
  await b.pause(5000);

  const ui = [];
  const engine = [];
  for (let i = 0; i < runs; i++) {
    const r = await b.executeAsync((done) => {
      const review = window.__dokuei.review();
      const before = review.analysis?.id ?? -1;
      review.analyse().then((e) => {
        if (e) return done({ error: e });
        const poll = () => {
          const a = window.__dokuei.review().analysis;
          if (a && a.id !== before && a.uiMs !== null) done({ uiMs: a.uiMs, engineMs: a.engineSeconds * 1000, findings: window.__dokuei.review().findings.length });
          else requestAnimationFrame(poll);
        };
        poll();
      }, (e) => done({ error: String(e) }));
    });
    if (r.error) throw new Error(r.error);
    ui.push(r.uiMs);
    engine.push(r.engineMs);
    console.log(`run ${i + 1}: Analyse → overlays on screen ${r.uiMs.toFixed(0)} ms; engine ${r.engineMs.toFixed(0)} ms; ${r.findings} findings`);
  }
  const [u, e] = [median(ui), median(engine)];
  const cli = Number(process.env.DOKUEI_BENCH_CLI_SECONDS) * 1000;
  if (cli > 0) {
    console.log(
      `Analyse → overlays visible: median ${u.toFixed(0)} ms vs \`dokuei analyse\` without a window ${cli.toFixed(0)} ms → ${(((u - cli) / cli) * 100).toFixed(1)}% more`,
    );
  }
  console.log(
    `Analyse → overlays visible: median ${u.toFixed(0)} ms vs the engine's ${e.toFixed(0)} ms → the UI adds ${(((u - e) / e) * 100).toFixed(1)}% (target ≤ 10%)`,
  );

  // Decisions: alternate confirm and reject on the findings (each supersedes the last).
  const times = await b.executeAsync((n, done) => {
    const out = [];
    const step = (i) => {
      const review = window.__dokuei.review();
      const list = review.findings.filter((f) => f.finding_id !== null);
      if (i >= n || list.length === 0) return done({ click: review.decisionMs.current.slice(-n), rust: review.commitMs.current.slice(-n), count: out.length });
      const f = list[i % list.length];
      const action = Math.floor(i / list.length) % 2 === 0 ? "confirm" : "reject";
      review
        .decide(f, action, action === "reject" ? { reason: "artefact" } : {})
        .then((err) => {
          if (err) return done({ error: err });
          out.push(i);
          // The next click after the screen has taken the answer in.
          requestAnimationFrame(() => step(i + 1));
        });
    };
    step(0);
  }, decisions);
  if (times.error) throw new Error(times.error);
  const c = times.click;
  const rs = times.rust;
  console.log(
    `  of which in Rust (ledger checks, the SQLite transaction, the study's review read back): p50 ${median(rs).toFixed(1)} ms, p95 ${quantile(rs, 0.95).toFixed(1)} ms`,
  );
  console.log(
    `decision click → row committed (round trip through Rust and SQLite, synchronous=FULL), ${c.length} decisions: p50 ${median(c).toFixed(1)} ms, p95 ${quantile(c, 0.95).toFixed(1)} ms, max ${Math.max(...c).toFixed(1)} ms (target p95 ≤ 50 ms)`,
  );
} finally {
  await app.close();
}
