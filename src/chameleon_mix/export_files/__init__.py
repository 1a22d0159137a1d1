"""Files copied into every export folder (the torchtitan module, the MDS and LitData recipes)
and the export's README. The copied files run in the trainer's environment, with numpy and the
trainer's library only: they import nothing from chameleon_mix."""
