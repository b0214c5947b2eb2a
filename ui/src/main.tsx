import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { tauriBackend } from "./backend";
import { setCpuRenderingDefault } from "./viewer/cornerstone";
import "./styles.css";

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root element");

// The shell chose the rendering for this machine before the window opened (software without a
// GPU render node); the viewer follows it.
async function start(element: HTMLElement): Promise<void> {
  try {
    setCpuRenderingDefault((await tauriBackend.appInfo()).cpu_rendering);
  } catch {
    // Outside the app (a preview): WebGL.
  }
  createRoot(element).render(
    <StrictMode>
      <App backend={tauriBackend} />
    </StrictMode>,
  );
}
void start(root);
