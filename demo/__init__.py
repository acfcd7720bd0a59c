"""The bundled demo (`vigie demo`): a fictional dairy going from calm to a recall story."""
