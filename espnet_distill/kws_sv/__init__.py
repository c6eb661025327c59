"""The joint keyword-spotting + speaker-verification task (kws_sv1 recipe): fine-tuning an
upstream with both heads, and its evaluation."""
