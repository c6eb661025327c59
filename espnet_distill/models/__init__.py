"""Networks: the acoustic model, HuBERT teachers, distilled students, and upstream loading."""
