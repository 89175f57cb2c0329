"""The prequential protocol of ml/eval/doc.go ("Prequential") with implicit's
ALS updated by partial_fit_users / partial_fit_items, on the stream riffle
wrote (bench/recommender --prequential): the same rows in the same time
order, the same cut and batches, the same event classes, candidates, tie
rule (equal scores: the smaller id ranks first) and metrics. Popularity is
recomputed here too, independently, so its figures and the event counts
must equal riffle's (the Go side checks).

argv: stream file, JSON parameters. The stream file is little-endian:
rows (int64), train rows (int64), then per row user (int32, dense id
index), item (int32), weight (float32), all in time order. Prints JSON.
"""
import json
import math
import sys
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from implicit.cpu.als import AlternatingLeastSquares


def main():
    path, params = sys.argv[1], json.loads(sys.argv[2])
    with open(path, "rb") as f:
        n, n_train = (int(x) for x in np.frombuffer(f.read(16), dtype="<i8"))
        rec = np.frombuffer(f.read(12 * n), dtype=[("u", "<i4"), ("i", "<i4"), ("w", "<f4")])
    users, items, weights = rec["u"].astype(np.int64), rec["i"].astype(np.int64), rec["w"].astype(np.float64)
    K, batch, min_w, alpha = params["k"], params["batch"], params["min_weight"], params["alpha"]

    # History, in the model's index spaces (first sight): dataset id -> row.
    urow, irow = {}, {}
    iid = []  # model item row -> dataset item index (id order)
    uhist, ihist = [], []  # row -> {other row: summed weight}

    def add(u, i, w):
        if u not in urow:
            urow[u] = len(uhist)
            uhist.append({})
        if i not in irow:
            irow[i] = len(ihist)
            ihist.append({})
            iid.append(i)
        ru, ri = urow[u], irow[i]
        uhist[ru][ri] = uhist[ru].get(ri, 0.0) + w
        ihist[ri][ru] = ihist[ri].get(ru, 0.0) + w

    for j in range(n_train):
        add(users[j], items[j], weights[j])

    def csr(rows, hist, width):
        indptr, idx, val = [0], [], []
        for r in rows:
            h = hist[r]
            cols = sorted(h)
            idx.extend(cols)
            val.extend(1.0 + alpha * h[c] for c in cols)
            indptr.append(len(idx))
        return sp.csr_matrix((np.array(val, dtype=np.float32), np.array(idx, dtype=np.int32), np.array(indptr, dtype=np.int64)),
                             shape=(len(rows), width))

    model = AlternatingLeastSquares(factors=params["factors"], regularization=params["regularization"], alpha=1.0,
                                    iterations=params["iterations"], use_cg=True, calculate_training_loss=False,
                                    num_threads=params["threads"], random_state=params["seed"], dtype=np.float32)
    model.cg_steps = params["cg_steps"]
    counts = dict(events=0, below=0, cold_items=0, repeats=0, duplicates=0, cold_users=0, warm=0)
    fig = {m: [0, 0.0, 0.0] for m in ("implicit", "popularity", "cold_users")}  # events, hr sum, ndcg sum
    update_s, update_rows = 0.0, 0

    def addfig(name, rank):
        f = fig[name]
        f[0] += 1
        if rank <= K:
            f[1] += 1
            f[2] += 1 / math.log2(rank + 1)

    def rank_of(scores, t, seen, ids):
        st = scores[t]
        ahead = (scores > st) | ((scores == st) & (ids < ids[t]))
        ahead[t] = False
        if seen:
            ahead[np.fromiter(seen, dtype=np.int64)] = False
        return 1 + int(ahead.sum())

    with threadpool_limits(1, "blas"):
        model.fit(csr(range(len(uhist)), uhist, len(ihist)), show_progress=False)
        for lo in range(n_train, n, batch):
            hi = min(lo + batch, n)
            nitems = len(ihist)
            ids = np.array(iid, dtype=np.int64)
            pop = np.array([len(h) for h in ihist], dtype=np.float32)
            Y = model.item_factors[:nitems]
            earlier = set()
            for j in range(lo, hi):
                counts["events"] += 1
                u, i = users[j], items[j]
                if weights[j] < min_w:
                    counts["below"] += 1
                    continue
                if i not in irow:
                    counts["cold_items"] += 1
                    continue
                t = irow[i]
                seen = uhist[urow[u]].keys() if u in urow else ()
                if t in seen:
                    counts["repeats"] += 1
                    continue
                if (u, i) in earlier:
                    counts["duplicates"] += 1
                    continue
                earlier.add((u, i))
                rp = rank_of(pop, t, seen, ids)
                if u not in urow:
                    counts["cold_users"] += 1
                    addfig("cold_users", rp)
                    continue
                counts["warm"] += 1
                addfig("popularity", rp)
                scores = Y @ model.user_factors[urow[u]]
                addfig("implicit", rank_of(scores, t, seen, ids))
            # Apply the batch: histories, then partial fits of the touched
            # users (new ones added), then of the touched items.
            for j in range(lo, hi):
                add(users[j], items[j], weights[j])
            tu = sorted({urow[users[j]] for j in range(lo, hi)})
            ti = sorted({irow[items[j]] for j in range(lo, hi)})
            mu, mi = csr(tu, uhist, len(ihist)), csr(ti, ihist, len(uhist))  # built outside the timed part
            t0 = time.perf_counter()
            new_items = len(ihist) - model.item_factors.shape[0]
            if new_items > 0:  # rows for new items, so the user solve can index them (zero: no contribution)
                model.item_factors = np.concatenate([model.item_factors, np.zeros((new_items, model.factors), dtype=np.float32)])
                model._YtY = None
            model.partial_fit_users(np.array(tu), mu)
            model.partial_fit_items(np.array(ti), mi)
            update_s += time.perf_counter() - t0
            update_rows += hi - lo
    out = {"counts": counts, "update_seconds": update_s, "update_rows": int(update_rows)}
    for m, (e, hr, nd) in fig.items():
        out[m] = {"events": e, "hr": hr / e if e else 0.0, "ndcg": nd / e if e else 0.0}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
