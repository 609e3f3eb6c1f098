"""Pre-training corpora from the user's own files (`naturelm data corpus`), on datatrove.

inputs.py (formats, globs, streaming readers) -> records.py (codec validation, keys, documents) ->
steps.py (the datatrove stages) -> pipeline.py (plan, executors, index and card). The shard format is
naturelm/data/shards.py; the pre-training loader that streams it is naturelm.train.data.ShardedBlocks.
"""
