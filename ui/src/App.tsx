import type { Backend } from "./backend";
import { SystemPanel } from "./SystemPanel";

export function App({ backend }: { backend: Backend }) {
  return (
    <div className="app">
      <header className="topbar">
        <h1>Dokuei</h1>
        <span className="subtitle">AI-assisted image reading</span>
      </header>
      <div className="banner" role="note" data-testid="clinical-use-banner">
        Research software. Bundled models are demonstrations trained on synthetic data: not for clinical use.
      </div>
      <main className="start">
        <p className="muted">
          Opening studies, the viewer and AI review are not part of this build yet; this screen checks that the
          workstation is ready to run models.
        </p>
        <SystemPanel backend={backend} />
      </main>
    </div>
  );
}
