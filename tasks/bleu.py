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


def corpus_bleu_orders(hypotheses, references, max_order=4):
    """sacreBLEU corpus BLEU-1..`max_order` (as fractions 0..1) against each hypothesis' own list of references.

    Args:
        hypotheses: strings.
        references: one list of reference strings per hypothesis (captions: every caption of an image); the
            lists may differ in length.
    """
    from sacrebleu.metrics import BLEU

    most = max(len(refs) for refs in references)
    # sacreBLEU takes reference streams; a hypothesis with fewer references has None in the others.
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    return [float(BLEU(max_ngram_order=n).corpus_score(hypotheses, streams).score) / 100.0
            for n in range(1, max_order + 1)]


def multi_reference_signature():
    """sacreBLEU's BLEU signature with `nrefs:var` (every reference of each hypothesis), e.g. for captions."""
    metric = _metrics()[0]
    metric.corpus_score(["a"], [["a"]])
    return str(metric.get_signature()).replace("nrefs:1", "nrefs:var")
