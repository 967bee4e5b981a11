/* Exact branch and bound over list-scheduling orders: is there an order whose peak is <= P?
 *
 * The Python side (chromosched.static.exact_list_search) compiles this file and documents the method;
 * in short:
 *   - the search follows the schedule in time: at t=0 it picks the K tasks that start (a set), then at
 *     every instant a worker becomes free it picks the task that starts there (a set when several
 *     workers are free at once), so every order is covered exactly once up to the order of tasks that
 *     start together, which does not change the schedule;
 *   - a start that would lift the running memory above P is not taken;
 *   - every node is cut by the relaxation of chromosched.static.peak_lower_bound applied to what is
 *     left (the running tasks with their remaining durations and the tasks not yet started):
 *     chain facts force tasks into the cut set T, and T must cover the area above P/K with at most
 *     K-1 tasks whose memory (with the smallest others filling the K tasks running at the last
 *     start, when no two workers can become free together) fits within P;
 *   - states proven infeasible are remembered (exact keys, no hashing shortcuts).
 * Integers throughout for the schedule (memory and durations in grid ticks); the relaxation uses
 * doubles with a relative slack so rounding can only make it weaker, never wrong.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef long long ll;
typedef uint64_t mask_t;

#define MAX_TASKS 63
#define MEMO_MAX_K 16
#define MEMO_BITS 20

typedef struct {
    mask_t left, running;
    ll residual[MEMO_MAX_K];
    int used;
} MemoEntry;

typedef struct {
    int n, k, strict; /* strict: the K running at the last start hold T (case A below) */
    ll tie;           /* earliest instant two workers can become free together; -1: never */
    int npairs;       /* pairs of disjoint task sets with equal duration (possible tied chains); -1: unknown */
    const mask_t *pair_a, *pair_b;
    mask_t chain[MAX_TASKS]; /* the tasks each worker has run, the running one included */
    double cut_budget; /* case B: most duration the cut set may remove from the window; <0: none */
    ll mem[MAX_TASKS], dur[MAX_TASKS], peak;
    double lam, slack;
    ll nodes, limit;
    int aborted;
    int run_task[MAX_TASKS];
    ll run_end[MAX_TASKS];
    int seq[MAX_TASKS], nseq;
    MemoEntry *memo;
    /* scratch of the cut-set search */
    double cut_need, *cut_mem, *cut_dur, *cut_gain;
    int cut_count, cut_in[2 * MAX_TASKS], cand[2 * MAX_TASKS], ncand;
} Search;

static uint64_t memo_hash(const Search *s, mask_t left, mask_t running, const ll *res) {
    uint64_t h = left * 0x9E3779B97F4A7C15ULL ^ (running + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
    for (int i = 0; i < s->k; i++) {
        h ^= (uint64_t)res[i];
        h *= 0x100000001B3ULL;
        h ^= h >> 29;
    }
    return h & ((1u << MEMO_BITS) - 1);
}

/* The state after the instant t: tasks left, running tasks and their remaining time (by task index). */
static void memo_key(const Search *s, ll t, mask_t *running, ll *res) {
    int task[MEMO_MAX_K], c = 0;
    *running = 0;
    for (int w = 0; w < s->k; w++)
        if (s->run_end[w] > t) { /* insert by task index, ascending */
            int i = s->run_task[w], b = c++;
            ll r = s->run_end[w] - t;
            *running |= (mask_t)1 << i;
            while (b > 0 && task[b - 1] > i) {
                task[b] = task[b - 1];
                res[b] = res[b - 1];
                b--;
            }
            task[b] = i;
            res[b] = r;
        }
    for (; c < MEMO_MAX_K; c++) res[c] = 0;
}

static int memo_seen(const Search *s, mask_t left, mask_t running, const ll *res) {
    const MemoEntry *e = &s->memo[memo_hash(s, left, running, res)];
    return e->used && e->left == left && e->running == running && !memcmp(e->residual, res, sizeof e->residual);
}

static void memo_store(Search *s, mask_t left, mask_t running, const ll *res) {
    MemoEntry *e = &s->memo[memo_hash(s, left, running, res)];
    e->used = 1;
    e->left = left;
    e->running = running;
    memcpy(e->residual, res, sizeof e->residual);
}

/* Least memory of K - count tasks outside T, added to T's memory, within P? (items sorted by memory) */
static int last_start_fits(const Search *s, double memsum, int count, int items) {
    if (!s->strict) return memsum <= (double)s->peak * s->slack;
    int need = s->k - count;
    double total = memsum;
    for (int a = 0; a < items && need > 0; a++)
        if (!s->cut_in[a]) {
            total += s->cut_mem[a];
            need--;
        }
    return need == 0 && total <= (double)s->peak * s->slack;
}

/* Case B: the window is at least as long as the earliest tie, so the cut set removes at most
   cut_budget of duration; the most area it can remove cuts the largest memories first. */
static int within_cut_budget(const Search *s, int items) {
    if (s->cut_budget < 0) return 1;
    double left = s->cut_budget, gain = 0;
    for (int a = items - 1; a >= 0 && left > 0; a--)
        if (s->cut_in[a] && s->cut_mem[a] > s->lam) {
            double take = s->cut_dur[a] < left ? s->cut_dur[a] : left;
            gain += (s->cut_mem[a] - s->lam) * take;
            left -= take;
        }
    return gain >= s->cut_need;
}

static int cut_search(Search *s, int pos, double gain, double memsum, int count, int items) {
    if (gain >= s->cut_need && last_start_fits(s, memsum, count, items) && within_cut_budget(s, items)) return 1;
    if (pos >= s->ncand || count >= s->k - 1) return 0;
    double best = gain;
    for (int x = pos, c = count; x < s->ncand && c < s->k - 1; x++, c++) best += s->cut_gain[s->cand[x]];
    if (best < s->cut_need) return 0;
    int a = s->cand[pos];
    if (memsum + s->cut_mem[a] <= (double)s->peak * s->slack) {
        s->cut_in[a] = 1;
        int ok = cut_search(s, pos + 1, gain + s->cut_gain[a], memsum + s->cut_mem[a], count + 1, items);
        s->cut_in[a] = 0;
        if (ok) return 1;
    }
    return cut_search(s, pos + 1, gain, memsum, count, items);
}

/* The first index j in [lo, hi) with v[j] >= x (v ascending); hi when none. */
static int first_at_least(const double *v, int lo, int hi, double x) {
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v[mid] >= x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* The relaxation on what is left after instant t: 0 when no completion has peak <= P. */
static int relaxation_allows(Search *s, mask_t left, ll t) {
    double im[2 * MAX_TASKS], id[2 * MAX_TASKS], gain[2 * MAX_TASKS];
    double cum_d[2 * MAX_TASKS + 1], cum_a[2 * MAX_TASKS + 1], cum_m[2 * MAX_TASKS + 1];
    int c = 0, k = s->k;
    double P = (double)s->peak * s->slack;
    /* Items by memory, ascending: the tasks left come largest first by index, so from the last index
       down they are in order; the running ones (at most K) are inserted. */
    for (int i = s->n - 1; i >= 0; i--)
        if (left >> i & 1) {
            im[c] = (double)s->mem[i];
            id[c] = (double)s->dur[i];
            c++;
        }
    for (int w = 0; w < k; w++)
        if (s->run_end[w] > t) {
            double x = (double)s->mem[s->run_task[w]], y = (double)(s->run_end[w] - t);
            int b = c - 1;
            while (b >= 0 && im[b] > x) {
                im[b + 1] = im[b];
                id[b + 1] = id[b];
                b--;
            }
            im[b + 1] = x;
            id[b + 1] = y;
            c++;
        }
    cum_d[0] = cum_a[0] = cum_m[0] = 0;
    for (int a = 0; a < c; a++) {
        cum_d[a + 1] = cum_d[a] + id[a];
        cum_a[a + 1] = cum_a[a] + im[a] * id[a];
        cum_m[a + 1] = cum_m[a] + im[a];
    }
    double need = 0, forced_mem = 0, forced_gain = 0;
    int forced = 0;
    for (int a = 0; a < c; a++) s->cut_in[a] = 0;
    for (int a = 0; a < c; a++) {
        double v = (im[a] - s->lam) * id[a];
        need += v;
        gain[a] = v > 0 ? v : 0;
        if (k == 1) continue;
        /* Chain facts: inside the window, K-1 other workers are busy during all of this item. The
           cheapest fill takes the other items by memory, ascending: the item j where it completes
           (before a, or after a with a's duration left out), the memory-time up to j, and theta = im[j]. */
        double fill = (k - 1) * id[a], area = 0, theta = 0;
        int must_cut = fill <= 0, j = 0; /* a task of no duration: nothing to fill, counted as cut */
        if (!must_cut) {
            /* cum_d + 1: the duration up to and including an index. Durations are whole ticks, so
               these sums and comparisons are exact. */
            j = first_at_least(cum_d + 1, 0, a, fill);
            if (j < a) area = cum_a[j] + im[j] * (fill - cum_d[j]);
            else {
                j = first_at_least(cum_d + 1, a + 1, c, fill + id[a]);
                if (j == c) must_cut = 1; /* the others cannot fill it: it is cut */
                else area = cum_a[j] - im[a] * id[a] + im[j] * (fill - (cum_d[j] - id[a]));
            }
        }
        if (!must_cut) {
            theta = im[j];
            if (area > (P - im[a]) * id[a]) must_cut = 1; /* im[a] + area / id[a] > P, without a division */
        }
        if (!must_cut) {
            /* least K-1 distinct other memories that include one >= theta: the K-1 smallest others,
               their largest swapped for the first other beyond them with memory >= theta if needed */
            int last = a < k - 1 ? k - 1 : k - 2; /* index of the (K-1)-th smallest other */
            if (last >= c) { /* fewer than K-1 others: all of them, theta's item among them */
                if (im[a] + cum_m[c] - im[a] > P) must_cut = 1;
            } else {
                double sum = cum_m[last + 1] - (a <= last ? im[a] : 0);
                if (im[last] < theta) {
                    int lo = first_at_least(im, last + 1, c, theta);
                    if (lo == a) lo++;
                    if (lo >= c) must_cut = 1;
                    else sum += im[lo] - im[last];
                }
                if (!must_cut && im[a] + sum > P) must_cut = 1;
            }
        }
        if (must_cut) {
            s->cut_in[a] = 1;
            forced++;
            forced_mem += im[a];
            forced_gain += gain[a];
        }
    }
    if (forced > k - 1 || forced_mem > P) return 0;
    s->cut_need = need;
    s->cut_mem = im;
    s->cut_dur = id;
    s->cut_gain = gain;
    s->ncand = 0;
    for (int a = 0; a < c; a++)
        if (!s->cut_in[a] && gain[a] > 0) s->cand[s->ncand++] = a;
    for (int x = 1; x < s->ncand; x++) { /* by gain, descending */
        int v = s->cand[x], y = x - 1;
        while (y >= 0 && gain[s->cand[y]] < gain[v]) {
            s->cand[y + 1] = s->cand[y];
            y--;
        }
        s->cand[y + 1] = v;
    }
    /* slack on the area too: the need is lowered by a relative 1e-9 of its scale */
    double scale = 0;
    for (int a = 0; a < c; a++) scale += im[a] * id[a];
    s->cut_need = need - 1e-9 * scale;
    /* Case A: no two workers become free together at tau. Then the K running after the last start
       hold T: strict form. Case B: two do. Then tau >= tie, so the window's K*(tau - t) >= K*(tie - t)
       worker time bounds what the cut set can remove (relaxed form otherwise). The node survives when
       either case does; with tie < 0 (never) only case A exists. */
    s->strict = 1;
    s->cut_budget = -1;
    if (cut_search(s, 0, forced_gain, forced_mem, forced, c)) return 1;
    if (s->tie < 0) return 0;
    /* Case B needs two workers whose whole chains end together at tau: their chains so far must lie
       inside a pair of disjoint task sets with equal total duration. */
    if (s->npairs >= 0) {
        int possible = 0;
        for (int q = 0; q < s->npairs && !possible; q++)
            for (int w1 = 0; w1 < k && !possible; w1++) {
                if (s->chain[w1] & ~s->pair_a[q]) continue;
                for (int w2 = 0; w2 < k; w2++)
                    if (w2 != w1 && !(s->chain[w2] & ~s->pair_b[q])) {
                        possible = 1;
                        break;
                    }
            }
        if (!possible) return 0;
    }
    double work = 0;
    for (int a = 0; a < c; a++) work += id[a];
    double budget = work - (double)k * (double)(s->tie - t);
    s->strict = 0;
    s->cut_budget = budget < work ? budget * s->slack + 1e-9 * work : -1;
    if (s->cut_budget != -1 && s->cut_budget < 0) return 0; /* the window cannot reach the tie */
    return cut_search(s, 0, forced_gain, forced_mem, forced, c);
}

static int next_instant(Search *s, mask_t left);

/* Give the free workers free[k..f-1] tasks from `left` with index >= from (a set: increasing index). */
static int start_tasks(Search *s, mask_t left, ll t, ll running_mem, const int *free_w, int f, int k, int from) {
    if (k == f || !left) return next_instant(s, left);
    for (int i = from; i < s->n; i++) {
        if (!(left >> i & 1) || running_mem + s->mem[i] > s->peak) continue;
        int w = free_w[k], old_task = s->run_task[w];
        ll old_end = s->run_end[w];
        mask_t old_chain = s->chain[w];
        s->run_task[w] = i;
        s->run_end[w] = t + s->dur[i];
        s->chain[w] |= (mask_t)1 << i;
        s->seq[s->nseq++] = i;
        int ok = start_tasks(s, left & ~((mask_t)1 << i), t, running_mem + s->mem[i], free_w, f, k + 1, i + 1);
        if (ok) return 1;
        s->nseq--;
        s->run_task[w] = old_task;
        s->run_end[w] = old_end;
        s->chain[w] = old_chain;
        if (s->aborted) return 0;
    }
    return 0;
}

static int next_instant(Search *s, mask_t left) {
    if (!left) return 1;
    if (++s->nodes > s->limit) {
        s->aborted = 1;
        return 0;
    }
    ll t = -1, running_mem = 0;
    for (int w = 0; w < s->k; w++)
        if (t < 0 || s->run_end[w] < t) t = s->run_end[w];
    int free_w[MAX_TASKS], f = 0;
    for (int w = 0; w < s->k; w++) {
        if (s->run_end[w] > t) running_mem += s->mem[s->run_task[w]];
        else free_w[f++] = w;
    }
    if (!relaxation_allows(s, left, t)) return 0;
    mask_t running = 0;
    ll res[MEMO_MAX_K];
    int use_memo = s->k <= MEMO_MAX_K && s->memo;
    if (use_memo) {
        memo_key(s, t, &running, res);
        if (memo_seen(s, left, running, res)) return 0;
    }
    int ok = start_tasks(s, left, t, running_mem, free_w, f, 0, 0);
    if (!ok && !s->aborted && use_memo) memo_store(s, left, running, res);
    return ok;
}

/* 1: an order with peak <= peak exists (written to order_out); 0: none exists; -1: node limit hit;
 * -2: bad arguments. tie: the earliest instant two workers can become free together (ticks), -1 if never;
 * pair_a[q], pair_b[q] (q < npairs): every pair of disjoint task sets whose durations add up to the same
 * instant at or after tie, up to the end of the window (both orders listed); npairs = -1 when not known. Tasks must come sorted by memory, largest first: the relaxation builds its items in memory order from
 * the task numbers (-2 otherwise). */
int chromosched_list_feasible(int n, int k, const ll *mem, const ll *dur, ll peak, ll tie, int npairs,
                              const mask_t *pair_a, const mask_t *pair_b, ll node_limit, int *order_out,
                              ll *nodes_out) {
    if (n < 1 || n > MAX_TASKS || k < 1 || k > n) return -2;
    for (int i = 1; i < n; i++)
        if (mem[i] > mem[i - 1]) return -2; /* not sorted by memory, largest first */
    Search *s = calloc(1, sizeof(Search));
    if (!s) return -2;
    s->n = n;
    s->k = k;
    s->tie = tie;
    s->npairs = npairs;
    s->pair_a = pair_a;
    s->pair_b = pair_b;
    s->peak = peak;
    s->limit = node_limit;
    s->lam = (double)peak / k;
    s->slack = 1.0 + 1e-12;
    for (int i = 0; i < n; i++) {
        s->mem[i] = mem[i];
        s->dur[i] = dur[i];
    }
    /* The memo (160 MB) is read at random: huge pages, where the kernel gives them, spare a TLB miss a node
       (a long search only: a short one touches few entries, and a huge page is zeroed whole). */
    size_t memo_bytes = ((size_t)1 << MEMO_BITS) * sizeof(MemoEntry);
    if (k <= MEMO_MAX_K) {
        void *m = mmap(NULL, memo_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
#ifdef MADV_HUGEPAGE
            if (node_limit >= 1000000) madvise(m, memo_bytes, MADV_HUGEPAGE);
#endif
            s->memo = m;
        }
    }
    int free_w[MAX_TASKS];
    for (int w = 0; w < k; w++) {
        free_w[w] = w;
        s->run_task[w] = 0;
        s->run_end[w] = 0;
    }
    mask_t all = n == 64 ? ~(mask_t)0 : (((mask_t)1 << n) - 1);
    int ok = start_tasks(s, all, 0, 0, free_w, k, 0, 0);
    int status = ok ? 1 : (s->aborted ? -1 : 0);
    if (ok)
        for (int i = 0; i < n; i++) order_out[i] = s->seq[i];
    if (nodes_out) *nodes_out = s->nodes;
    if (s->memo) munmap(s->memo, memo_bytes);
    free(s);
    return status;
}
