"""GMM-HMM alignment (asr1 stage 4): MFCC features, GMMs, the transition model, decision trees,
and the frame targets of the three KD units."""
