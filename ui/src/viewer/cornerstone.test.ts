import { afterEach, describe, expect, it, vi } from "vitest";
import { commitMprStack, isMprStackRegistered, MPR_TENTATIVE_MS, registerMprStack, unregisterMprStack } from "./cornerstone";
import { fakeView } from "./fakeView";

describe("MPR stack registrations", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("forgets a registration no render committed, and keeps the committed ones", () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-12-03T10:00:00Z"));
    const path = (k: number) => `plane/${String(k)}`;
    // A render React throws away (StrictMode's second one) and the one it commits.
    const thrownAway = registerMprStack(fakeView({}), path);
    const shown = registerMprStack(fakeView({}), path);
    commitMprStack(shown);
    expect(thrownAway).not.toBe(shown);
    // Not yet: a render may take a while to commit.
    vi.advanceTimersByTime(MPR_TENTATIVE_MS - 1000);
    const next = registerMprStack(fakeView({}), path);
    expect(isMprStackRegistered(thrownAway)).toBe(true);
    vi.advanceTimersByTime(2000);
    const later = registerMprStack(fakeView({}), path);
    expect(isMprStackRegistered(thrownAway)).toBe(false);
    expect(isMprStackRegistered(shown)).toBe(true);
    // `next` is younger than the limit still; `later` was just made.
    expect(isMprStackRegistered(next)).toBe(true);
    expect(isMprStackRegistered(later)).toBe(true);
    unregisterMprStack(shown);
    expect(isMprStackRegistered(shown)).toBe(false);
  });
});
