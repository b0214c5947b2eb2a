import { useEffect, useState } from "react";
import type { Backend } from "./backend";
import type { AppError, AppInfo, OnnxRuntimeInfo } from "./bindings";
import { sharedMemory } from "./viewer/bulk";
import { describeLibrarySource, describeProvider, providerAvailability } from "./format";

type RuntimeState =
  | { kind: "loading" }
  | { kind: "ready"; info: OnnxRuntimeInfo }
  | { kind: "failed"; error: AppError };

/** About / system: the application, the ONNX Runtime in use and where models will run. */
export function SystemPanel({ backend }: { backend: Backend }) {
  const [app, setApp] = useState<AppInfo | null>(null);
  const [runtime, setRuntime] = useState<RuntimeState>({ kind: "loading" });

  useEffect(() => {
    let live = true;
    void backend.appInfo().then((info) => {
      if (live) setApp(info);
    });
    void backend.onnxRuntimeInfo().then((result) => {
      if (!live) return;
      setRuntime(
        result.status === "ok" ? { kind: "ready", info: result.data } : { kind: "failed", error: result.error },
      );
    });
    return () => {
      live = false;
    };
  }, [backend]);

  return (
    <section className="panel" aria-labelledby="system-title">
      <h2 id="system-title">About this workstation</h2>
      {app && (
        <dl className="facts">
          <dt>Application</dt>
          <dd data-testid="app-version">
            {app.name} {app.version}
          </dd>
          <dt>Platform</dt>
          <dd>{app.platform}</dd>
          <dt>Viewer rendering</dt>
          <dd data-testid="app-rendering">
            {app.rendering === "software"
              ? "software (no GPU render node): images drawn on the CPU, WebKit's DMA-BUF renderer off"
              : "WebGL"}
          </dd>
          <dt>Pixel transport</dt>
          <dd data-testid="app-transport">
            {sharedMemory()
              ? "stacks through shared memory (the web-process extension), the first slice through the dokuei: scheme"
              : "slice by slice through the dokuei: scheme (the web-process extension is not loaded)"}
          </dd>
          <dt>Application log</dt>
          <dd data-testid="app-log-dir">{app.log_dir || "not written (the log folder could not be opened)"}</dd>
        </dl>
      )}
      <h3>ONNX Runtime</h3>
      <RuntimeDetails state={runtime} />
    </section>
  );
}

function RuntimeDetails({ state }: { state: RuntimeState }) {
  switch (state.kind) {
    case "loading":
      return <p className="muted">Loading ONNX Runtime…</p>;
    case "failed":
      return (
        <div className="error" role="alert" data-testid="ort-error" data-code={state.error.code}>
          <strong>ONNX Runtime is not available: AI analysis cannot run.</strong>
          <p data-testid="ort-error-message">{state.error.message}</p>
          <p className="muted">Error code: {state.error.code}</p>
        </div>
      );
    case "ready": {
      const { info } = state;
      return (
        <>
          <dl className="facts">
            <dt>Version</dt>
            <dd data-testid="ort-version">{info.version}</dd>
            <dt>Library</dt>
            <dd>
              <code>{info.library_path}</code> <span className="muted">({describeLibrarySource(info.library_source)})</span>
            </dd>
            <dt>Models run on</dt>
            <dd data-testid="ort-provider">{describeProvider(info.preferred_provider)}</dd>
          </dl>
          <table className="providers" data-testid="ort-providers">
            <thead>
              <tr>
                <th scope="col">Execution provider</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {info.providers.map((p) => (
                <tr key={p.kind} className={p.compiled_in && p.in_library ? "ok" : "off"}>
                  <td>{p.kind}</td>
                  <td data-testid={`provider-status-${p.kind}`}>{providerAvailability(p)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      );
    }
  }
}
