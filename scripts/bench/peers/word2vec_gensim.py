#!/usr/bin/python3
"""word2vec_gensim.py -- the gensim half of scripts/bench/word2vec: trains
Word2Vec on one corpus file with Mikolov's hyperparameters and prints one
line "gensim <mode> words_per_s <x> seconds <s> ws353 <rho> simlex <rho>
analogy <acc>".

    /usr/bin/python3 word2vec_gensim.py CORPUS MODE THREADS ITER EVAL_DIR [SAVE]

MODE is sg_ns, sg_hs, cbow_ns or cbow_hs. words_per_s counts the corpus's
words times the epochs (before subsampling, as usagi counts them) over the
wall time of train() alone (the vocabulary scan is left out on both sides).
SAVE, when given, writes the vectors there (word2vec binary format).
"""
import os
import sys
import time
import logging

from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence


def main():
    corpus, mode, threads, iters, eval_dir = sys.argv[1:6]
    threads, iters = int(threads), int(iters)
    sg = 1 if mode.startswith('sg') else 0
    hs = 1 if mode.endswith('hs') else 0
    alpha = 0.025 if sg else 0.05
    model = Word2Vec(vector_size=100, window=5, sample=1e-3, hs=hs, negative=0 if hs else 5,
                     workers=threads, epochs=iters, min_count=5, alpha=alpha, sg=sg, seed=1)
    sentences = LineSentence(corpus)
    model.build_vocab(sentences)
    t0 = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=iters)
    seconds = time.perf_counter() - t0
    words = model.corpus_total_words * iters
    wv = model.wv
    ws = wv.evaluate_word_pairs(os.path.join(eval_dir, 'wordsim353.tsv'))[1][0]
    sl = wv.evaluate_word_pairs(os.path.join(eval_dir, 'simlex999.txt'))[1][0]
    acc = wv.evaluate_word_analogies(os.path.join(eval_dir, 'questions-words.txt'),
                                     restrict_vocab=30000)[0]
    print('gensim %s words_per_s %.0f seconds %.3f ws353 %.4f simlex %.4f analogy %.4f'
          % (mode, words / seconds, seconds, ws, sl, acc))
    if len(sys.argv) > 6:
        wv.save_word2vec_format(sys.argv[6], binary=True)


if __name__ == '__main__':
    logging.disable(logging.CRITICAL)
    main()
