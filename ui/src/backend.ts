// The one interface the UI talks to. `tauriBackend` calls the Rust commands through the
// generated bindings; `MemoryBackend` serves tests and previews without a window.

import { open } from "@tauri-apps/plugin-dialog";
import {
  commands,
  type AppError,
  type AppInfo,
  type OnnxRuntimeInfo,
  type OpenedStudy,
  type RecentStudy,
  type StackView,
} from "./bindings";
import { loopbackUrl } from "./viewer/imageId";

/** How the generated bindings return a command's `Result<T, AppError>`. */
export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

export interface Backend {
  appInfo(): Promise<AppInfo>;
  onnxRuntimeInfo(): Promise<Result<OnnxRuntimeInfo, AppError>>;
  openStudy(paths: string[]): Promise<Result<OpenedStudy, AppError>>;
  stackView(series: number, stack: number): Promise<Result<StackView, AppError>>;
  recentStudies(): Promise<RecentStudy[]>;
  /** Studies named on the command line, to open at start. */
  startupPaths(): Promise<string[]>;
  /** Asks the user for a folder (or files: DICOM, DICOMDIR, zip); null when cancelled. */
  pick(kind: "folder" | "files"): Promise<string[] | null>;
  /** Starts the loopback pixel server (the alternative transport); its base URL, or null. */
  pixelServer(): Promise<string | null>;
}

export const tauriBackend: Backend = {
  appInfo: () => commands.appInfo(),
  onnxRuntimeInfo: () => commands.onnxRuntimeInfo(),
  openStudy: (paths) => commands.openStudy(paths),
  stackView: (series, stack) => commands.stackView(series, stack),
  recentStudies: () => commands.recentStudies(),
  startupPaths: () => commands.startupPaths(),
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

/** A backend with fixed answers, for unit tests. */
export class MemoryBackend implements Backend {
  constructor(
    private readonly app: AppInfo,
    private readonly runtime: Result<OnnxRuntimeInfo, AppError>,
  ) {}

  appInfo(): Promise<AppInfo> {
    return Promise.resolve(this.app);
  }

  onnxRuntimeInfo(): Promise<Result<OnnxRuntimeInfo, AppError>> {
    return Promise.resolve(this.runtime);
  }

  openStudy(paths: string[]): Promise<Result<OpenedStudy, AppError>> {
    return Promise.resolve({
      status: "error",
      error: { code: "study_not_found", message: `no study in the memory backend (${paths.join(", ")})` },
    });
  }

  stackView(): Promise<Result<StackView, AppError>> {
    return Promise.resolve({ status: "error", error: { code: "not_found", message: "no study is open" } });
  }

  recentStudies(): Promise<RecentStudy[]> {
    return Promise.resolve([]);
  }

  startupPaths(): Promise<string[]> {
    return Promise.resolve([]);
  }

  pick(): Promise<string[] | null> {
    return Promise.resolve(null);
  }

  pixelServer(): Promise<string | null> {
    return Promise.resolve(null);
  }
}
