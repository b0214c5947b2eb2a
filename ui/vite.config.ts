import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The Tauri shell loads the built files from dist/ (custom protocol); `npm run dev` serves them
// on a fixed port for `tauri dev`.
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: { target: "safari16", outDir: "dist", emptyOutDir: true },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
