// The viewer benchmark (printed, not a test): Rust→webview throughput, time from choosing a
// 300-slice 512² CT series to its first rendered slice, and scroll frame times with the whole
// series loaded. Run by scripts/bench-viewer.sh against a release build under Xvfb.
//
//   DOKUEI_APP=…/release/dokuei-app DOKUEI_BENCH_STUDY=dir node bench-viewer.mjs

import { launch, rgb, saveDisplayScreenshot } from "./harness.mjs";

const study = process.env.DOKUEI_BENCH_STUDY;
if (!study) throw new Error("set DOKUEI_BENCH_STUDY to a study folder");

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const app = await launch();
const b = app.browser;
try {
  await b.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 30000 });
  await b.setTimeout({ script: 600000 });
  // 1. Open the study (headers of 300 files) and show its series, as choosing it in the Open
  //    dialog does; time until the first slice is on screen.
  const opened = await b.executeAsync((dir, done) => {
    const t = performance.now();
    const rendered = new Promise((resolve) =>
      document.addEventListener("CORNERSTONE_IMAGE_RENDERED", resolve, { capture: true, once: true }),
    );
    window.__dokuei
      .openPaths([dir])
      .then((e) => {
        if (e) throw new Error(e);
        return rendered;
      })
      .then(
        () => done(performance.now() - t),
        (e) => done(`failed: ${e}`),
      );
  }, study);
  if (typeof opened !== "number") throw new Error(opened);
  console.log(`choose the 300-slice series → first slice rendered: ${opened.toFixed(0)} ms (target ≤ 1000 ms)`);
  // 2. Throughput: fetch every slice from Rust (after the viewer's own prefetch settles), through
  //    each transport in turn, twice, alternating (the machine's load drifts during a run).
  await b.pause(3000);
  const mb = (x) => (x.bytes / 1e6 / x.seconds).toFixed(0);
  const fetchAll = async (transport, inFlight) => {
    const used = await b.executeAsync((t, done) => {
      window.__dokuei.transport(t).then(done, (e) => done(String(e)));
    }, transport);
    if (used !== transport) return null;
    const r = await b.executeAsync((n, done) => {
      window.__dokuei.bench.fetchAll(0, 0, n).then(done, (e) => done({ error: String(e) }));
    }, inFlight);
    if (r.error) throw new Error(r.error);
    return r;
  };
  const best = {};
  for (let round = 0; round < 2; round++) {
    for (const transport of ["loopback", "scheme"]) {
      for (const inFlight of [4, 1]) {
        const r = await fetchAll(transport, inFlight);
        if (!r) continue;
        const key = `${transport} ${inFlight}`;
        if (!best[key] || r.seconds < best[key].seconds) best[key] = r;
      }
    }
  }
  await fetchAll("scheme", 1); // back to the default
  for (const transport of ["loopback", "scheme"]) {
    const four = best[`${transport} 4`];
    const one = best[`${transport} 1`];
    if (!four) {
      console.log(`Rust→webview via ${transport}: not available`);
      continue;
    }
    console.log(
      `Rust→webview via ${transport === "loopback" ? "the loopback server" : "the dokuei: URI scheme (default)"}: 4 requests in flight ${four.slices} slices, ${(four.bytes / 1e6).toFixed(1)} MB in ${four.seconds.toFixed(2)} s = ${mb(four)} MB/s (target ≥ 200 MB/s); one at a time ${mb(one)} MB/s (best of 2)`,
    );
  }
  // 2a. The viewer's stack load, into the image cache: one fetch per slice through the image
  //     loader (4 in flight), against shared memory through the web-process extension
  //     (bulk.ts), each twice, alternating.
  let bySliceBest = null;
  let shmBest = null;
  for (let round = 0; round < 2; round++) {
    const one = await b.executeAsync((done) => {
      window.__dokuei.bench.sliceBySlice(0, 4).then(done, (e) => done({ failed: String(e) }));
    });
    if (one.failed) console.log(`stack load slice by slice: ${one.failed}`);
    else {
      console.log(`stack load into the image cache, one fetch per slice (4 in flight, the dokuei: scheme): ${one.slices} slices, ${(one.bytes / 1e6).toFixed(1)} MB in ${one.seconds.toFixed(3)} s = ${mb(one)} MB/s`);
      if (!bySliceBest || one.seconds < bySliceBest.seconds) bySliceBest = one;
    }
    const shm = await b.executeAsync((done) => {
      window.__dokuei.bench.sharedMemory(0).then(done, (e) => done({ failed: String(e) }));
    });
    if (shm.failed) {
      console.log(`Rust→webview via shared memory (web-process extension): ${shm.failed}`);
      break;
    }
    if (!shmBest || shm.seconds < shmBest.seconds) shmBest = shm;
    console.log(
      `Rust→webview via shared memory (web-process extension, the viewer's stack load): ${shm.slices} slices in ${shm.pieces} pieces, ${(shm.bytes / 1e6).toFixed(1)} MB into the image cache in ${shm.seconds.toFixed(3)} s = ${mb(shm)} MB/s (target ≥ 200 MB/s); a slice in it is byte for byte the scheme's: ${shm.same ? "yes" : "NO"}; summed over pieces (2 in flight): the shell writing ${shm.parts.shell.toFixed(3)} s, copying in ${shm.parts.map.toFixed(3)} s, making the images ${shm.parts.cache.toFixed(3)} s`,
    );
  }
  if (shmBest && bySliceBest) {
    console.log(`stack load into the image cache, shared memory / one fetch per slice (best of 2 each): ${(shmBest.seconds / bySliceBest.seconds).toFixed(2)}× the time, ${mb(shmBest)} against ${mb(bySliceBest)} MB/s`);
  }
  if (best["loopback 4"] && best["scheme 4"]) {
    console.log(`loopback / scheme throughput, 4 in flight: ${(best["scheme 4"].seconds / best["loopback 4"].seconds).toFixed(2)}×`);
  }
  // 3. Scroll: step through all slices (all cached by now), timing each step until rendered.
  const frames = await b.executeAsync((done) => {
    window.__dokuei.bench.scrollAll(0).then(done, (e) => done({ error: String(e) }));
  });
  console.log(
    `scroll through ${frames.length} slices, each step to the frame after it is drawn: p50 ${quantile(frames, 0.5).toFixed(1)} ms, p95 ${quantile(frames, 0.95).toFixed(1)} ms, max ${Math.max(...frames).toFixed(1)} ms per slice (target p95 ≤ 16 ms)`,
  );
  // 3a. A held arrow key: one step asked for at every animation frame for 4 s.
  const held = await b.executeAsync((done) => {
    if (typeof window.__dokuei.bench.heldKey !== "function") done({ error: "not in this build of the app" });
    else window.__dokuei.bench.heldKey(0, 4000).then(done, (e) => done({ error: String(e) }));
  });
  if (held.error) console.log(`held arrow key: ${held.error}`);
  else console.log(
    `held arrow key: ${held.stepsPerSecond.toFixed(1)} slices rendered per second at ${held.framesPerSecond.toFixed(1)} animation frames per second: ${(held.stepsPerSecond / held.framesPerSecond).toFixed(2)}× the frame rate while stepping, ${(held.stepsPerSecond / held.idleFramesPerSecond).toFixed(2)}× the display's (${held.idleFramesPerSecond.toFixed(1)} frames per second idle; target ≥ 0.9×)`,
  );
  // 3b. MPR: the coronal and sagittal views step through 120 planes each, every plane
  //     reformatted in Rust from the loaded volume when it is asked for (the viewer's prefetch
  //     runs beside, as it does for a reader).
  const mprSteps = {};
  await b.execute(() => window.__dokuei.setMpr(true));
  await b.waitUntil(() => b.execute(() => Boolean(window.__dokuei.mpr()?.viewport(2))), { timeout: 30000 });
  await b.pause(2000);
  for (const [view, name] of [[1, "coronal"], [2, "sagittal"]]) {
    const steps = await b.executeAsync((v, done) => {
      window.__dokuei.bench.scrollMpr(v, 120).then(done, (e) => done({ error: String(e) }));
    }, view);
    if (steps.error) throw new Error(steps.error);
    mprSteps[name] = steps;
    console.log(
      `MPR ${name} (planes reformatted in Rust on request, 512 × 300 slices): ${steps.length} steps, p50 ${quantile(steps, 0.5).toFixed(1)} ms, p95 ${quantile(steps, 0.95).toFixed(1)} ms per plane`,
    );
  }
  await b.execute(() => window.__dokuei.setMpr(false));
  await b.pause(1000);
  // 3c. Cornerstone3D's own MPR: a volume viewport of the same stack, loaded cold through the
  //     same `dokuei:` loader, stepping the same planes (WebGL only; timed in the same mode).
  const volume = await b.executeAsync((done) => {
    window.__dokuei.bench.volumeMpr(0, 120).then(done, (e) => done({ failed: String(e) }));
  });
  if (volume.failed) {
    console.log(`Cornerstone3D volume-viewport MPR: ${volume.failed}`);
  } else {
    console.log(
      `Cornerstone3D volume-viewport MPR: volume of 300 slices loaded in ${volume.loadMs.toFixed(0)} ms, first coronal image ${volume.firstMs.toFixed(0)} ms later`,
    );
    for (const name of ["coronal", "sagittal"]) {
      const steps = volume[name];
      const rust = mprSteps[name];
      console.log(
        `Cornerstone3D volume-viewport MPR ${name}: ${steps.length} steps, p50 ${quantile(steps, 0.5).toFixed(1)} ms, p95 ${quantile(steps, 0.95).toFixed(1)} ms; Rust planes / Cornerstone3D (p50): ${(quantile(rust, 0.5) / quantile(steps, 0.5)).toFixed(2)}×`,
      );
    }
  }
  // 4. The floor: the same steps through a bare WebGL2 renderer of the same size, same webview.
  const floor = await b.executeAsync((done) => {
    window.__dokuei.bench.glFloor(0).then(done, (e) => done({ error: String(e) }));
  });
  if (floor.error) {
    console.log(`bare WebGL2 renderer: ${floor.error}`);
  } else {
    const q = (xs) => `p50 ${quantile(xs, 0.5).toFixed(1)} ms, p95 ${quantile(xs, 0.95).toFixed(1)} ms`;
    console.log(`bare WebGL2 renderer, same canvas size: upload + draw + GPU wait ${q(floor.draw)}; to the next animation frame ${q(floor.frame)}; drawn off screen and copied to an on-screen 2D canvas (as Cornerstone3D presents), to the next animation frame ${q(floor.copied)}; animation frames with nothing changing every ${q(floor.idle)}`);
    console.log(`Cornerstone3D scroll step / bare renderer's frame: p50 ${(quantile(frames, 0.5) / quantile(floor.frame, 0.5)).toFixed(2)}×, p95 ${(quantile(frames, 0.95) / quantile(floor.frame, 0.95)).toFixed(2)}× (target ≤ 1.1×)`);
    for (const [name, steps] of Object.entries(mprSteps)) {
      console.log(`MPR ${name} step / bare renderer's frame (p50): ${(quantile(steps, 0.5) / quantile(floor.frame, 0.5)).toFixed(2)}×`);
    }
  }
  // 5. WebDriver screenshots (what the end-to-end tests' pixel checks use): timed, three in a
  //    row, each given 20 s; in some renderer modes WebKitGTK has been seen never to answer.
  const shots = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const shot = await Promise.race([
      b.takeScreenshot().then((png) => png.length),
      new Promise((resolve) => setTimeout(() => resolve(null), 20000)),
    ]);
    if (shot === null) {
      shots.push("no answer in 20 s");
      break;
    }
    shots.push(`${(performance.now() - t).toFixed(0)} ms`);
  }
  console.log(`WebDriver screenshots: ${shots.join(", ")}`);
  // 6. Is a WebGL canvas's last draw what the screen shows (WebKit bug 324549)? A whole-page
  //    canvas is filled red, then blue, then left alone; the X display (not WebDriver) is
  //    photographed: blue is the last draw, red the one before.
  const rect = await b.getWindowRect();
  for (const antialias of [false, true]) {
    const failed = await b.executeAsync((aa, done) => {
      window.__dokuei.bench.lastDrawProbe(aa).then(() => done(null), (e) => done(String(e)));
    }, antialias);
    if (failed) {
      console.log(`WebGL canvas, antialias ${antialias}: ${failed}`);
      continue;
    }
    const file = saveDisplayScreenshot(`bench-last-draw-antialias-${antialias}`);
    const [red, green, blue] = rgb(file, rect.x + rect.width / 2, rect.y + rect.height / 2);
    await b.execute(() => window.__dokuei.bench.removeProbe());
    const shown = blue > 200 && red < 60 ? "its last draw" : red > 200 && blue < 60 ? "the draw before its last (one draw late)" : `neither (rgb ${red}, ${green}, ${blue})`;
    console.log(`WebGL canvas, antialias ${antialias}: the screen shows ${shown}`);
  }
  // 7. Cornerstone3D's other rendering path (WebGL when the shell chose the CPU, else the
  //    CPU): the page reloads with it, the series is shown again and stepped through once
  //    loaded.
  const cpuFirst = await b.execute(() => window.__dokuei.bench.cpuRendering());
  const path = (cpu) => (cpu ? "on the CPU" : "on WebGL");
  console.log(`Cornerstone3D renders ${path(cpuFirst)} in this mode (the steps above)`);
  await b.execute((cpu) => {
    window.__dokuei.bench.setCpuRendering(cpu);
    location.reload();
  }, !cpuFirst);
  try {
    await b.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 30000 });
    const again = await b.executeAsync((dir, done) => {
      window.__dokuei.openPaths([dir]).then(done, (e) => done(String(e)));
    }, study);
    if (again) throw new Error(again);
    await b.pause(5000);
    const cpu = await b.executeAsync((done) => {
      window.__dokuei.bench.scrollAll(0).then(done, (e) => done({ error: String(e) }));
    });
    if (cpu.error) throw new Error(cpu.error);
    const other = await b.executeAsync((done) => {
      window.__dokuei.bench.heldKey(0, 4000).then(done, (e) => done({ failed: String(e) }));
    });
    console.log(
      `Cornerstone3D ${path(!cpuFirst)}, scroll through ${cpu.length} slices: p50 ${quantile(cpu, 0.5).toFixed(1)} ms, p95 ${quantile(cpu, 0.95).toFixed(1)} ms per slice (${path(cpuFirst)} in the same run: p50 ${quantile(frames, 0.5).toFixed(1)} ms); ratio p50 ${(quantile(cpu, 0.5) / quantile(frames, 0.5)).toFixed(2)}×; held arrow key ${other.failed ?? `${other.stepsPerSecond.toFixed(1)} slices per second at ${other.framesPerSecond.toFixed(1)} frames per second (${other.idleFramesPerSecond.toFixed(1)} idle)`}`,
    );
  } finally {
    await b.execute(() => window.__dokuei.bench.setCpuRendering(null));
  }
} finally {
  await app.close();
}
