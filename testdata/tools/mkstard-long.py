#!/usr/bin/env python3
"""Build a long-message eval set from STARD: each question behind 5 to 8
sentences of everyday narrative (no legal words), as people write when they
describe their problem first. Seeded, so the set is the same on every run.

  python3 testdata/tools/mkstard-long.py ../shared/eval/stard-train /tmp/stard-long
  ./bin/zhisou eval -data /tmp/stard-long            # corpus and qrels are STARD's

The output folder gets queries.jsonl and links to the source's corpus.jsonl
and qrels.tsv.
"""
import json
import os
import random
import sys

STORY = [
    "我今年三十五岁，在老家县城生活，平时工作很忙，家里有两个孩子要照顾。",
    "这件事困扰我很久了，晚上经常睡不着觉，也不知道该找谁商量。",
    "我问过身边的朋友，每个人说的都不一样，越听越糊涂。",
    "我家里人都劝我算了，可是我心里一直过不去这个坎。",
    "前段时间我还专门请了假跑了好几趟，来回花了不少路费和时间。",
    "说实话我文化水平不高，很多东西看不太懂，希望能说得简单一点。",
    "我们那边的人一般都不太懂这些，出了事情也只能自己想办法。",
    "对方一直拖着不给说法，打电话也不接，微信也不回。",
    "我在网上查了很多资料，但是说法五花八门，不知道哪个是对的。",
    "事情是去年夏天开始的，到现在已经快一年了，一直没有解决。",
    "我只是想问清楚，心里有个底，不想稀里糊涂地吃亏。",
    "本来大家关系还不错，逢年过节也会走动，没想到会闹成这样。",
    "我现在手头也比较紧，孩子上学要花钱，老人身体也不好。",
    "麻烦您帮我看看，先谢谢了，真的很着急。",
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(16)
    lengths = []
    with open(os.path.join(src, "queries.jsonl"), encoding="utf-8") as f, \
            open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as w:
        for line in f:
            q = json.loads(line)
            text = "".join(rng.sample(STORY, rng.randint(5, 8))) + q["text"]
            lengths.append(len(text))
            w.write(json.dumps({"id": q["id"], "text": text}, ensure_ascii=False) + "\n")
    for name in ("corpus.jsonl", "qrels.tsv"):
        dst = os.path.join(out, name)
        if not os.path.exists(dst):
            os.symlink(os.path.abspath(os.path.join(src, name)), dst)
    lengths.sort()
    print(f"{len(lengths)} queries, median {lengths[len(lengths) // 2]} characters, longest {lengths[-1]}")


if __name__ == "__main__":
    main()
