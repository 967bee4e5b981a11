/* Many independent simulated-annealing runs over list-scheduling orders (see multistart_annealing.py).

   Values are integers on the 1e-6 grid of peak_memory.py, and the peak is computed exactly as
   PeakEvaluator._list_peak does: the first K tasks start at t=0, each later task on the first worker
   to become free (lowest index on ties), a level counts only once time has advanced past it, and
   workers that finished at the last dispatch instant without new work are not running then. */
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef long long ll;
#define MAXN 64

typedef struct {
    uint64_t s0, s1;
} rng_t;

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t next(rng_t *r) { /* xoroshiro128+ */
    uint64_t s0 = r->s0, s1 = r->s1, out = s0 + s1;
    s1 ^= s0;
    r->s0 = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
    r->s1 = (s1 << 37) | (s1 >> 27);
    return out;
}

static double uniform(rng_t *r) { return (double)(next(r) >> 11) * (1.0 / 9007199254740992.0); }

static int below(rng_t *r, int n) { return (int)((next(r) >> 33) % (uint64_t)n); }

/* The exact peak of order o; with excess != NULL also the excess area above target: the integral
   over time of (memory in use - target) where positive, the tail after the last dispatch included.
   Early rejection: with peak_cap >= 0 it stops as soon as the peak so far is above peak_cap (with
   excess: and the area so far above area_cap), counts the stop in *stops, and returns that peak (and
   area) so far, which are then above the caps too. peak_cap = -1: the whole order. */
static ll evaluate_within(const ll *mem, const ll *dur, int n, int k, const int *o, ll target, double *excess,
                          ll peak_cap, double area_cap, ll *stops) {
    ll wmem[MAXN], free_at[MAXN], cur = 0, peak, last = 0;
    double area = 0.0;
    int i, w, j;
    if (k >= n) {
        for (i = 0; i < n; i++) cur += mem[o[i]];
        if (excess) *excess = cur > target ? (double)(cur - target) : 0.0;
        return cur;
    }
    for (i = 0; i < k; i++) {
        wmem[i] = mem[o[i]];
        free_at[i] = dur[o[i]];
        cur += wmem[i];
    }
    peak = cur;
    for (i = k; i < n; i++) {
        ll t = free_at[0];
        w = 0;
        for (j = 1; j < k; j++)
            if (free_at[j] < t) {
                t = free_at[j];
                w = j;
            }
        if (t != last) { /* time advances: the level held on [last, t) is complete */
            if (cur > peak) peak = cur;
            if (excess && cur > target) area += (double)(cur - target) * (double)(t - last);
            last = t;
            if (peak_cap >= 0 && peak > peak_cap) { /* the peak and the area only grow from here */
                if (!excess) {
                    ++*stops;
                    return peak;
                }
                if (area > area_cap) {
                    ++*stops;
                    *excess = area;
                    return peak;
                }
            }
        }
        cur += mem[o[i]] - wmem[w];
        wmem[w] = mem[o[i]];
        free_at[w] = t + dur[o[i]];
    }
    for (w = 0; w < k; w++)
        if (free_at[w] <= last) {
            cur -= wmem[w];
            wmem[w] = 0;
        }
    if (cur > peak) peak = cur;
    if (excess) { /* the tail: the remaining tasks end in order of their end times */
        ll end[MAXN], drop[MAXN];
        int m = 0;
        for (w = 0; w < k; w++)
            if (wmem[w] > 0) { /* insertion sort by end time */
                for (j = m; j > 0 && end[j - 1] > free_at[w]; j--) {
                    end[j] = end[j - 1];
                    drop[j] = drop[j - 1];
                }
                end[j] = free_at[w];
                drop[j] = wmem[w];
                m++;
            }
        for (j = 0; j < m; j++) {
            if (cur > target) area += (double)(cur - target) * (double)(end[j] - last);
            last = end[j];
            cur -= drop[j];
        }
        *excess = area;
    }
    return peak;
}

static ll evaluate(const ll *mem, const ll *dur, int n, int k, const int *o, ll target, double *excess) {
    return evaluate_within(mem, dur, n, k, o, target, excess, -1, 0.0, NULL);
}

/* The uniform the next draw will give, without drawing it. */
static double peek_uniform(const rng_t *r) {
    rng_t copy = *r;
    return uniform(&copy);
}

/* Early rejection. Metropolis takes a move worse by delta iff u < exp(-delta / temp), that is iff
   delta / temp < -ln(u); with u peeked before the move is evaluated, the evaluation can stop once the
   move is surely worse than that. Here `scale` x temp is what one unit of delta / temp is worth (ticks,
   or tick area), and the margin asks delta / temp to pass -ln(u) by a relative and an absolute 1e-9
   (1e7 times the rounding of exp, log and u near 1, at any scale) plus two units of the value, so a
   stopped move is one the full evaluation would have rejected too, and the draws and decisions are
   exactly those without early rejection. */
static double surely_rejected_beyond(double scale, double temp, double neg_log_u) {
    return scale * temp * (neg_log_u * (1.0 + 1e-9) + 1e-9) + 2.0;
}

/* A random neighbour: swap two positions, or move one task to another position (insertion). */
static void propose(rng_t *r, int *cand, const int *cur, int n) {
    int a = below(r, n), b = below(r, n - 1), x;
    memcpy(cand, cur, (size_t)n * sizeof(int));
    if (b >= a) b++;
    x = cand[a];
    if (next(r) & 1) {
        cand[a] = cand[b];
        cand[b] = x;
    } else if (a < b) {
        memmove(cand + a, cand + a + 1, (size_t)(b - a) * sizeof(int));
        cand[b] = x;
    } else {
        memmove(cand + b + 1, cand + b, (size_t)(a - b) * sizeof(int));
        cand[b] = x;
    }
}

static ll lowered(ll peak, double step) { return (ll)((double)peak * (1.0 - step)); }

/* One run of `evals` evaluations from `initial`: annealing on the peak (temperature t_start ->
   t_start * end_ratio, as fractions of the best peak) for all but the last `excess_share`, then
   annealing on the excess area above (1 - excess_step) x the best peak, from the best order, with
   temperatures excess_t[0] -> excess_t[1] as fractions of best peak x (total duration / K).
   Returns the run's best peak and writes its order to best. */
static ll run(const ll *mem, const ll *dur, int n, int k, const int *initial, uint64_t seed, ll evals,
              double t_start, double end_ratio, double excess_share, double excess_step, const double *excess_t,
              int early, ll *stops, int *best) {
    int cur[MAXN], cand[MAXN];
    uint64_t x = seed;
    rng_t r;
    ll total = 0, best_peak, cur_peak, phase1, phase2, e, target;
    double window, cur_excess, cand_excess, t_end = t_start * end_ratio;
    int i;
    r.s0 = splitmix(&x);
    r.s1 = splitmix(&x);
    for (i = 0; i < n; i++) total += dur[i];
    window = (double)total / k;
    memcpy(cur, initial, (size_t)n * sizeof(int));
    memcpy(best, initial, (size_t)n * sizeof(int));
    best_peak = cur_peak = evaluate(mem, dur, n, k, cur, 0, NULL);
    if (n < 2) return best_peak; /* one task: no other order (and no move to propose) */
    evals -= 1;
    phase2 = (ll)((double)evals * excess_share);
    phase1 = evals - phase2;
    for (e = 0; e < phase1; e++) {
        double temp = t_start * pow(t_end / t_start, (double)e / (double)phase1), delta;
        ll p, cap = -1; /* -1: evaluate to the end */
        propose(&r, cand, cur, n);
        if (early) { /* taken only if p - cur_peak < best_peak * temp * -ln(u) */
            double u = peek_uniform(&r);
            double beyond = u > 0 ? surely_rejected_beyond((double)best_peak, temp, -log(u)) : 1e300;
            if (beyond < 1e18) cap = cur_peak + (ll)beyond;
        }
        p = evaluate_within(mem, dur, n, k, cand, 0, NULL, cap, 0.0, stops);
        delta = (double)(p - cur_peak) / (double)best_peak;
        if (delta <= 0 || uniform(&r) < exp(-delta / temp)) {
            memcpy(cur, cand, (size_t)n * sizeof(int));
            cur_peak = p;
            if (p < best_peak) {
                best_peak = p;
                memcpy(best, cur, (size_t)n * sizeof(int));
            }
        }
    }
    if (phase2 <= 0) return best_peak;
    memcpy(cur, best, (size_t)n * sizeof(int));
    target = lowered(best_peak, excess_step);
    evaluate(mem, dur, n, k, cur, target, &cur_excess); /* the same order again: not counted */
    for (e = 0; e < phase2; e++) {
        double temp = excess_t[0] * pow(excess_t[1] / excess_t[0], (double)e / (double)phase2), delta;
        double area_cap = 0.0;
        ll p, cap = -1;
        propose(&r, cand, cur, n);
        if (early) { /* stopped only where it can be neither a new best peak nor a taken move */
            double u = peek_uniform(&r);
            if (u > 0) { /* the relative 1e-9 of cur_excess covers the rounding of cand_excess - cur_excess */
                cap = best_peak - 1;
                area_cap = cur_excess * (1.0 + 1e-9) + surely_rejected_beyond((double)best_peak * window, temp, -log(u));
            }
        }
        p = evaluate_within(mem, dur, n, k, cand, target, &cand_excess, cap, area_cap, stops);
        if (p < best_peak) { /* a new best: lower the target below it */
            best_peak = p;
            memcpy(best, cand, (size_t)n * sizeof(int));
            memcpy(cur, cand, (size_t)n * sizeof(int));
            target = lowered(best_peak, excess_step);
            evaluate(mem, dur, n, k, cur, target, &cur_excess);
            continue;
        }
        delta = (cand_excess - cur_excess) / ((double)best_peak * window);
        if (delta <= 0 || uniform(&r) < exp(-delta / temp)) {
            memcpy(cur, cand, (size_t)n * sizeof(int));
            cur_excess = cand_excess;
        }
    }
    return best_peak;
}

/* Runs until `budget` evaluations are spent: even runs from `initial`, odd runs from the best order
   so far (a restart with the temperature raised again). Run r uses recipe r mod `recipes`
   (run_length[], t_start[]); the last run gets what is left. The lowest peak wins (the earliest run
   on ties). Returns the best peak; writes its order, the number of runs and the winning run, and,
   where run_peaks/run_orders are not NULL, every run's best peak and order (room for all runs).
   Pausing: the call returns after the first run that ends at or beyond `pause_at` evaluations, with
   *spent the evaluations spent so far; called again with the same arguments and *runs_done, *spent,
   *best_run, best_order and the returned peak (`best_so_far`; -1 on the first call) it resumes, and
   the runs are exactly those of one call without a pause. early: stop evaluating surely rejected moves
   (the same runs); *stops counts those stops (added to, over pauses). */
ll chromosched_multistart(int n, int k, const ll *mem, const ll *dur, const int *initial, uint64_t seed, ll budget,
                          int recipes, const ll *run_length, const double *t_start, double end_ratio,
                          double excess_share, double excess_step, const double *excess_t, int *best_order,
                          ll *runs_done, ll *best_run, ll *run_peaks, int *run_orders, ll pause_at, ll *spent_io,
                          ll best_so_far, int early, ll *stops) {
    int order[MAXN];
    ll spent = *spent_io, best = best_so_far, r = *runs_done;
    if (n > MAXN || n < 1 || k < 1 || budget < 1) return -1;
    while (spent < budget && spent < pause_at) {
        int recipe = (int)(r % recipes);
        ll evals = run_length[recipe] < budget - spent ? run_length[recipe] : budget - spent;
        uint64_t run_seed = seed * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)r * 0xD1B54A32D192ED03ULL);
        ll p = run(mem, dur, n, k, r % 2 ? best_order : initial, run_seed, evals, t_start[recipe], end_ratio, excess_share,
                   excess_step, excess_t, early, stops, order);
        if (run_peaks) run_peaks[r] = p;
        if (run_orders) memcpy(run_orders + r * n, order, (size_t)n * sizeof(int));
        if (best < 0 || p < best) {
            best = p;
            memcpy(best_order, order, (size_t)n * sizeof(int));
            *best_run = r;
        }
        spent += evals;
        r++;
    }
    *runs_done = r;
    *spent_io = spent;
    return best;
}

/* The exact peak of one order and its excess area above `target` (what the runs' second phase
   minimises), for the tests to compare with PeakEvaluator.batch_peaks(threshold=target). */
ll chromosched_excess_area(int n, int k, const ll *mem, const ll *dur, const int *order, ll target, double *excess) {
    if (n > MAXN || n < 1 || k < 1) return -1;
    return evaluate(mem, dur, n, k, order, target, excess);
}
