// A ratio as the bench tables print it: the value and how it was computed, so that a reader can
// check it against the figures beside it (a median of in-round ratios is not their quotient).

/** nri's figure divided by the baseline's, both as the row shows them. */
export const quotient = (nri: number, baseline: number): string => `${(nri / baseline).toFixed(2)} (nri ÷ baseline)`;

/** The median of the ratios within each alternating round: the machine's drift falls on both sides alike. */
export const medianOfRounds = (value: number, rounds: number): string =>
  `${value.toFixed(2)} (median of ${rounds} in-round ratios)`;

/** The two sides' means over alternating rounds divided, where a round's first side is slower whichever it is. */
export const ofMeans = (nriMean: number, baselineMean: number): string =>
  `${(nriMean / baselineMean).toFixed(2)} (mean ÷ mean)`;
