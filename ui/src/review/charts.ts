// Chart.js as the QA view uses it: the parts registered once, colours readable on the dark
// theme, and a hook that rebuilds a chart when its data changes.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "react";

Chart.register(LineController, LineElement, PointElement, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
// Readable on the dark theme.
Chart.defaults.color = "#c8d0da";
Chart.defaults.borderColor = "#333b46";

/** A Chart.js chart on a canvas, rebuilt when `deps` change. */
export function useChart(build: (canvas: HTMLCanvasElement) => Chart, deps: unknown[]) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const chart = build(ref.current);
    return () => {
      chart.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- rebuilt when the data changes
  }, deps);
  return ref;
}
