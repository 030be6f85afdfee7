"""Independent judges of generated samples (they know nothing of the models).

  image_judge     a scikit-learn classifier on real images says which class a sample shows
  music_measures  pitch-class histogram, pitch range, notes per second, polyphony; set distances
  event_bigram    a bigram event model: the baseline a music model's samples must beat
"""

from reformer_keras.evaluation.event_bigram import EventBigram
from reformer_keras.evaluation.image_judge import ImageJudge, quantize_levels, transform_images
from reformer_keras.evaluation.music_measures import compare_sets, piece_measures, set_measures

__all__ = ["EventBigram", "ImageJudge", "compare_sets", "piece_measures", "quantize_levels",
           "set_measures", "transform_images"]
