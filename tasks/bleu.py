"""Corpus BLEU and chrF by sacreBLEU (Post 2018), the comparable scores of detokenised text, with signatures."""


def _metrics(lowercase=False):
    from sacrebleu.metrics import BLEU, CHRF

    return BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)


def corpus_scores(hypotheses, references, lowercase=False):
    """`{"bleu": float, "chrf": float}` of detokenised hypotheses against one reference each."""
    bleu, chrf = _metrics(lowercase)
    return {
        "bleu": float(bleu.corpus_score(hypotheses, [references]).score),
        "chrf": float(chrf.corpus_score(hypotheses, [references]).score),
    }


def signatures(lowercase=False):
    """sacreBLEU's signature strings, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`."""
    bleu, chrf = _metrics(lowercase)
    for metric in (bleu, chrf):  # a signature names the number of references: score once with one
        metric.corpus_score(["a"], [["a"]])
    return {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}
