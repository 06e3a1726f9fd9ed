//! How many prompt rows a step may carry while other sequences decode.
//!
//! A step's time is learned online as a linear function of its shape: the
//! rows it feeds (each one a pass over the weights' activations) and the
//! cache positions those rows attend to (the attention reads every cached
//! key and value of its sequence). Prompt rows are then added to a step of
//! decodes while the predicted step stays within `decode_slowdown` times
//! the predicted step of the decodes alone. Rows at a late position cost
//! more than early ones: the model has both, so chunks shrink as a prompt
//! gets longer. The decodes' own step is measured, not predicted (the
//! first row of a step costs more than the next ones, so a straight line
//! through mixed steps overestimates it): every [`PROBE`] steps one step
//! runs the decodes alone, so the reference follows their growing
//! contexts. (A single "cost per prompt row" learned early in a prompt let
//! late chunks overshoot; one learned against stale decode-only steps
//! starved the prompt.)

/// What the planner needs to know of one running sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Want {
    /// Prompt tokens not yet fed (0: decoding).
    pub prompt_left: usize,
    /// Positions already in its cache.
    pub cached: usize,
}

impl Want {
    fn prefilling(&self) -> bool {
        self.prompt_left > 0
    }
}

/// A step's shape: the features its time is predicted from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Shape {
    /// Rows fed.
    pub rows: usize,
    /// Cache positions attended, all rows together (a row at position
    /// `p` attends to `p + 1`).
    pub positions: usize,
}

impl Shape {
    /// Adds a row at cache position `at`.
    fn add_row(&mut self, at: usize) {
        self.rows += 1;
        self.positions = self.positions.saturating_add(at.saturating_add(1));
    }

    fn features(&self) -> [f64; 3] {
        // Positions in thousands keep the normal equations well scaled.
        [1.0, self.rows as f64, self.positions as f64 / 1000.0]
    }
}

/// Weight each older step keeps per new one (about the last 30 steps
/// count).
const FORGET: f64 = 0.97;

/// While prompts are read beside decodes, one step in this many runs the
/// decodes alone, to measure them afresh.
pub(super) const PROBE: u64 = 16;

/// Weight of a new measurement in the decodes-alone average.
const ALONE_WEIGHT: f64 = 0.3;

/// Learned step times: exponentially weighted least squares of
/// `seconds ≈ c · [1, rows, positions / 1000]` over steps that had
/// decodes in them, and the measured time of the decodes alone.
#[derive(Debug, Default)]
pub(super) struct Pace {
    xtx: [[f64; 3]; 3],
    xty: [f64; 3],
    /// Steps recorded.
    steps: u64,
    /// Per number of decoding rows: a moving average of a step of those
    /// decodes alone, in seconds, and the step it was last updated at.
    alone: Vec<Option<(f64, u64)>>,
    /// The most prompt rows a learned step had: a step adds at most twice
    /// as many, so a shape far from anything measured is approached in
    /// doubling steps rather than predicted from nothing.
    widest: usize,
}

impl Pace {
    /// Learns from a step of shape `shape` with `prompt_rows` of its rows
    /// from prompts, that took `seconds`.
    pub fn record(&mut self, shape: Shape, prompt_rows: usize, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 || shape.rows == 0 {
            return;
        }
        let x = shape.features();
        for (i, row) in self.xtx.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v * FORGET + x[i] * x[j];
            }
            self.xty[i] = self.xty[i] * FORGET + x[i] * seconds;
        }
        self.widest = self.widest.max(prompt_rows);
        let index = self.steps;
        self.steps += 1;
        if prompt_rows == 0 {
            let d = shape.rows;
            if self.alone.len() <= d {
                self.alone.resize(d + 1, None);
            }
            let avg = match self.alone[d] {
                Some((old, _)) => old + ALONE_WEIGHT * (seconds - old),
                None => seconds,
            };
            self.alone[d] = Some((avg, index));
        }
    }

    /// A fresh measurement of `decoding` decodes alone: None when there is
    /// none, or the last one is [`PROBE`] steps old.
    fn alone(&self, decoding: usize) -> Option<f64> {
        let (t, at) = self.alone.get(decoding).copied().flatten()?;
        (self.steps.saturating_sub(at) < PROBE).then_some(t)
    }

    /// The predicted time of a step of `shape`, once anything is learned.
    pub fn predict(&self, shape: Shape) -> Option<f64> {
        let c = self.coefficients()?;
        let x = shape.features();
        Some(c.iter().zip(x).map(|(c, x)| c * x).sum())
    }

    /// The fitted coefficients: the normal equations with a small ridge
    /// (so shapes not yet varied, say only one decode so far, still give
    /// an answer), solved by Gaussian elimination. None before the first
    /// step or if the fit is degenerate.
    fn coefficients(&self) -> Option<[f64; 3]> {
        if self.xtx[0][0] <= 0.0 {
            return None;
        }
        let mut a = self.xtx;
        let mut b = self.xty;
        let ridge = 1e-6 * (a[0][0] + a[1][1] + a[2][2]);
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += ridge;
        }
        for col in 0..3 {
            let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
            a.swap(col, pivot);
            b.swap(col, pivot);
            let p = a[col][col];
            if p.abs() < 1e-300 {
                return None;
            }
            for r in col + 1..3 {
                let f = a[r][col] / p;
                let pivot_row = a[col];
                for (v, pv) in a[r].iter_mut().zip(pivot_row).skip(col) {
                    *v -= f * pv;
                }
                b[r] -= f * b[col];
            }
        }
        let mut c = [0.0; 3];
        for i in (0..3).rev() {
            let rest: f64 = (i + 1..3).map(|k| a[i][k] * c[k]).sum();
            c[i] = (b[i] - rest) / a[i][i];
        }
        c.iter().all(|v| v.is_finite()).then_some(c)
    }
}

/// Scheduler limits the plan follows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Rows one step feeds at most, all sequences together.
    pub step_tokens: usize,
    /// Prompt rows at most while anyone decodes.
    pub prefill_chunk_while_decoding: usize,
    /// How much slower than the decodes alone their step may get.
    pub decode_slowdown: f64,
}

/// How many tokens each sequence feeds this step (same order as `wants`;
/// 0: none). Every decoding sequence feeds one. Prompts, oldest first,
/// share the rest of `step_tokens`; while anyone decodes, prompt rows are
/// added only while the predicted step stays within `decode_slowdown`
/// times the decodes' own, at most `prefill_chunk_while_decoding`. The
/// oldest prompt gets at least one row, so prompts progress even when
/// decodes fill the budget, except in a step that measures the decodes
/// alone (when their last measurement is stale, see [`PROBE`]).
pub(super) fn plan(wants: &[Want], limits: &Limits, pace: &Pace) -> Vec<usize> {
    let step = limits.step_tokens.max(1);
    let mut base = Shape::default();
    for w in wants.iter().filter(|w| !w.prefilling()) {
        base.add_row(w.cached);
    }
    let mut left = step.saturating_sub(base.rows);
    // While others decode: the prompt rows allowed, and the time bound.
    let (cap, bound) = if base.rows > 0 {
        let Some(alone) = pace.alone(base.rows) else {
            // Measure the decodes alone first.
            return wants.iter().map(|w| usize::from(!w.prefilling())).collect();
        };
        let explored = pace.widest.saturating_mul(2).max(1);
        let cap = limits.prefill_chunk_while_decoding.max(1).min(explored);
        (cap, Some(alone * limits.decode_slowdown.max(1.0)))
    } else {
        (step, None)
    };
    left = left.min(cap);
    let mut shape = base;
    let mut first_prompt = true;
    wants
        .iter()
        .map(|w| {
            if !w.prefilling() {
                return 1;
            }
            let mut n = 0;
            while n < w.prompt_left && left > 0 {
                let mut next = shape;
                next.add_row(w.cached + n);
                let fits = match (base.rows, bound) {
                    (0, _) => true,
                    (_, Some(bound)) => pace.predict(next).is_some_and(|t| t <= bound),
                    (_, None) => false,
                };
                if !(fits || first_prompt && n == 0) {
                    break;
                }
                shape = next;
                n += 1;
                left -= 1;
            }
            if first_prompt && n == 0 && w.prompt_left > 0 {
                // Decodes filled the budget: the oldest prompt still moves.
                n = 1;
                shape.add_row(w.cached);
            }
            first_prompt = false;
            n
        })
        .collect()
}

/// The shape of a step that feeds `fed[i]` tokens of `wants[i]`.
pub(super) fn shape_of(wants: &[Want], fed: &[usize]) -> (Shape, usize) {
    let mut shape = Shape::default();
    let mut prompt_rows = 0;
    for (w, &n) in wants.iter().zip(fed) {
        for j in 0..n {
            shape.add_row(w.cached + j);
        }
        if w.prefilling() {
            prompt_rows += n;
        }
    }
    (shape, prompt_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic machine: 5 ms a step, 1.5 ms a row, 2.5 ms per
    /// thousand attended positions.
    fn machine(shape: Shape) -> f64 {
        0.005 + 0.0015 * shape.rows as f64 + 0.0025 * shape.positions as f64 / 1000.0
    }

    fn limits() -> Limits {
        Limits {
            step_tokens: 128,
            prefill_chunk_while_decoding: 16,
            decode_slowdown: 2.0,
        }
    }

    fn decoding(cached: usize) -> Want {
        Want {
            prompt_left: 0,
            cached,
        }
    }

    fn prompt(left: usize, cached: usize) -> Want {
        Want {
            prompt_left: left,
            cached,
        }
    }

    /// Runs steps of `wants` on the synthetic machine, learning as the
    /// engine does, and returns each step's planned rows.
    fn run(pace: &mut Pace, wants: &mut [Want], steps: usize) -> Vec<Vec<usize>> {
        let mut plans = Vec::new();
        for _ in 0..steps {
            let fed = plan(wants, &limits(), pace);
            let (shape, prompt_rows) = shape_of(wants, &fed);
            pace.record(shape, prompt_rows, machine(shape));
            for (w, n) in wants.iter_mut().zip(&fed) {
                w.cached += n;
                w.prompt_left -= (*n).min(w.prompt_left);
            }
            plans.push(fed);
        }
        plans
    }

    #[test]
    fn the_fit_recovers_a_linear_machine() {
        let mut pace = Pace::default();
        for rows in 1..6 {
            for positions in [100, 900, 2500, 4000] {
                let shape = Shape { rows, positions };
                pace.record(shape, rows - 1, machine(shape));
            }
        }
        for shape in [
            Shape {
                rows: 3,
                positions: 1500,
            },
            Shape {
                rows: 8,
                positions: 9000,
            },
        ] {
            let (got, want) = (pace.predict(shape), machine(shape));
            assert!(
                got.is_some_and(|g| (g - want).abs() < 1e-5),
                "{got:?} vs {want}"
            );
        }
    }

    #[test]
    fn decodes_are_measured_alone_first_and_then_every_probe_steps() {
        let mut pace = Pace::default();
        let mut wants = [decoding(10), prompt(5000, 0), prompt(500, 0)];
        let plans = run(&mut pace, &mut wants, 3 * PROBE as usize);
        assert_eq!(plans[0], vec![1, 0, 0]);
        // Then the oldest prompt moves, one row while nothing else is
        // known, and the decodes alone again once their time is stale.
        assert_eq!(plans[1], vec![1, 1, 0]);
        let alone: Vec<usize> = (0..plans.len()).filter(|&i| plans[i][1] == 0).collect();
        let probe = PROBE as usize;
        assert_eq!(alone, vec![0, probe, 2 * probe], "{plans:?}");
    }

    #[test]
    fn without_decodes_prompts_share_the_step_budget_oldest_first() {
        let pace = Pace::default();
        let wants = [prompt(100, 0), prompt(100, 0)];
        assert_eq!(plan(&wants, &limits(), &pace), vec![100, 28]);
    }

    #[test]
    fn prompt_chunks_keep_the_decodes_step_within_the_slowdown() {
        let mut pace = Pace::default();
        let mut wants = [decoding(64)];
        run(&mut pace, &mut wants, 20);
        let mut wants = [wants[0], prompt(2000, 0)];
        let plans = run(&mut pace, &mut wants.clone(), 400);
        let mut early = None;
        for fed in plans.iter().skip(8) {
            let (shape, _) = shape_of(&wants, fed);
            let alone = machine(Shape {
                rows: 1,
                positions: wants[0].cached + 1,
            });
            // At least one prompt row always goes; beyond it, the bound.
            if fed[1] > 1 {
                assert!(machine(shape) <= 2.0 * alone + 1e-9, "{fed:?} at {wants:?}");
            }
            early.get_or_insert(fed[1]);
            for (w, n) in wants.iter_mut().zip(fed) {
                w.cached += n;
                w.prompt_left -= (*n).min(w.prompt_left);
            }
        }
        // Early rows are cheap, so a chunk holds several; a row at 2,000
        // positions costs about one decode step, so late chunks shrink.
        let late = plans.iter().rev().find(|fed| fed[1] > 0).map(|fed| fed[1]);
        assert!(early.is_some_and(|e| e >= 2), "{early:?}");
        assert!(
            late.is_some_and(|l| l < early.unwrap_or(0)),
            "{late:?} {early:?}"
        );
    }

    #[test]
    fn new_shapes_are_approached_by_doubling() {
        let mut pace = Pace::default();
        let mut wants = [decoding(64), prompt(5000, 0)];
        let plans = run(&mut pace, &mut wants, 6);
        let rows: Vec<usize> = plans.iter().map(|fed| fed[1]).collect();
        // The first step measures the decode alone.
        assert_eq!(rows[..3], [0, 1, 2], "{rows:?}");
        for pair in rows.windows(2) {
            assert!(pair[1] <= 2 * pair[0].max(1), "{rows:?}");
        }
    }

    #[test]
    fn hostile_times_are_ignored() {
        let mut pace = Pace::default();
        let shape = Shape {
            rows: 1,
            positions: 1,
        };
        pace.record(shape, 0, f64::NAN);
        pace.record(shape, 0, -1.0);
        pace.record(shape, 0, f64::INFINITY);
        assert_eq!(pace.predict(shape), None);
        pace.record(Shape::default(), 0, 1.0);
        assert_eq!(pace.predict(shape), None);
    }
}
