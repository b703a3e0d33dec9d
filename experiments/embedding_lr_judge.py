"""A second learned alternative to the compliance judge, measured once and not adopted.

    python experiments/embedding_lr_judge.py   # about 2 min on 2 cores

Logistic regression on frozen all-MiniLM-L6-v2 embeddings of the answer and of the prompt-answer
product, trained on the development labels only (rounds 1-6), its C chosen by 5-fold CV grouped by
prompt, then scored once on the test round held out by prompt (round 7) and on the hand-written v2
set, beside the compliance judge and the two OR-ed. It printed lower accuracy than the rules on both
(and far lower on v2, whose answers are written unlike SmolLM2's): a frozen sentence embedding does
not separate "attempts what was asked" from "talks about it".
"""
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from alignlab.judges import audit, make_judge
from alignlab.extraction.search import embed
dev = audit.load_labelled_answers(audit.REAL_DEV); test = audit.load_labelled_answers(audit.REAL_TEST)
v2 = audit.load_heldout_answers(audit.HELDOUT_ANSWERS)
def feats(rows):
    P = embed([r["prompt"] for r in rows]); A = embed([r["answer"] for r in rows])
    return np.hstack([A, P * A])
t=time.time(); Xd, Xt, Xv = feats(dev), feats(test), feats(v2); print("embed", time.time()-t)
yd = np.array([r["harmful"] for r in dev]); yt = np.array([r["harmful"] for r in test]); yv=np.array([r["label"] for r in v2])
groups = [r["prompt"] for r in dev]
def m(y, f): 
    f=np.asarray(f,bool); return dict(acc=round(float((f==y).mean()),3), rec=round(float(f[y].mean()),3), prec=round(float(y[f].mean()) if f.any() else 0,3))
best=None
for C in (0.1, 0.3, 1, 3, 10):
    clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")
    p = cross_val_predict(clf, Xd, yd, groups=groups, cv=GroupKFold(5), method="predict_proba")[:,1]
    r = m(yd, p>0.5); print("C", C, "cv", r)
    if best is None or r["acc"] > best[1]["acc"]: best=(C, r)
C=best[0]; clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(Xd, yd)
print("chosen C", C, "test(round7)", m(yt, clf.predict(Xt)), "v2", m(yv, clf.predict(Xv)))
comp = make_judge("compliance")
ct = comp([r["prompt"] for r in test],[r["answer"] for r in test]); cv2 = comp([r["prompt"] for r in v2],[r["answer"] for r in v2])
print("compliance test", m(yt, ct), "v2", m(yv, cv2))
lt = clf.predict(Xt); lv = clf.predict(Xv)
print("OR test", m(yt, np.asarray(ct,bool)|lt.astype(bool)), "v2", m(yv, np.asarray(cv2,bool)|lv.astype(bool)))
