// The one interface the UI talks to Rust through: every command of the generated bindings
// (viewer, review, QA, PACS), plus the file dialog and the loopback pixel server's URL.
// `tauriBackend` is the real one; `MemoryBackend` serves tests and previews without a window.

import { open } from "@tauri-apps/plugin-dialog";
import { commands, type AppError, type AppInfo, type OnnxRuntimeInfo } from "./bindings";
import { loopbackUrl } from "./viewer/imageId";

/** How the generated bindings return a command's `Result<T, AppError>`. */
export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

export interface Backend extends Omit<typeof commands, "pixelServer"> {
  /** Asks the user for a folder (or files: DICOM, DICOMDIR, zip); null when cancelled. */
  pick(kind: "folder" | "files"): Promise<string[] | null>;
  /** Starts the loopback pixel server (the alternative transport); its base URL, or null. */
  pixelServer(): Promise<string | null>;
}

export const tauriBackend: Backend = {
  ...commands,
  async pixelServer() {
    const server = await commands.pixelServer();
    return server ? loopbackUrl(server) : null;
  },
  async pick(kind) {
    const chosen = await open(
      kind === "folder"
        ? { directory: true, multiple: false, title: "Open a study folder" }
        : {
            directory: false,
            multiple: true,
            title: "Open DICOM files, a DICOMDIR or a zip archive",
            filters: [{ name: "DICOM, DICOMDIR, zip", extensions: ["dcm", "DCM", "zip", "*"] }],
          },
    );
    if (chosen === null) return null;
    return Array.isArray(chosen) ? chosen : [chosen];
  },
};

/**
 * A backend with fixed answers for the system panel and empty answers elsewhere, for unit
 * tests: every other command answers that it is not in the memory backend.
 */
export function MemoryBackend(app: AppInfo, runtime: Result<OnnxRuntimeInfo, AppError>): Backend {
  const fixed: Partial<Backend> = {
    appInfo: () => Promise.resolve(app),
    onnxRuntimeInfo: () => Promise.resolve(runtime),
    recentStudies: () => Promise.resolve([]),
    startupPaths: () => Promise.resolve([]),
    pick: () => Promise.resolve(null),
    pixelServer: () => Promise.resolve(null),
  };
  return new Proxy(fixed, {
    get(target, name: string) {
      if (name in target) return target[name as keyof Backend];
      return () => Promise.resolve({ status: "error", error: { code: "not_found", message: `${name} is not in the memory backend` } });
    },
  }) as Backend;
}
