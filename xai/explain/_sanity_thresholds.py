"""The thresholds of the sanity verdict, torch-free (the report's sanity section shows them beside each check)."""

from __future__ import annotations

#: MPRT: after every layer is re-initialised, the mean Spearman rank correlation between
#: the original and the randomised attributions must not exceed this. Adebayo et al. read
#: maps that stay this similar as "insensitive to the model's weights".
MPRT_MAX_CORRELATION = 0.5
#: Deletion: the method's AUC must be below the random ranking's by more than this
#: (gain = random AUC - method AUC, in units of target probability x fraction removed).
MIN_DELETION_GAIN = 0.0
#: Insertion: the method's AUC must exceed the random ranking's by more than this.
MIN_INSERTION_GAIN = 0.0
